namespace Grpc.Backup.Qemu.Internal;

/// <summary>Runs one named step and turns its failure into a <see cref="SnapshotAccessException"/> that says where.</summary>
internal static class SnapshotStep
{
    public static async Task RunAsync(string? deviceName, string step, Func<Task> action)
    {
        try
        {
            await action();
        }
        catch (Exception ex) when (IsExpected(ex))
        {
            throw Wrap(deviceName, step, ex);
        }
    }

    public static async Task<T> RunAsync<T>(string? deviceName, string step, Func<Task<T>> action)
    {
        try
        {
            return await action();
        }
        catch (Exception ex) when (IsExpected(ex))
        {
            throw Wrap(deviceName, step, ex);
        }
    }

    public static void Run(string? deviceName, string step, Action action)
    {
        try
        {
            action();
        }
        catch (Exception ex) when (IsExpected(ex))
        {
            throw Wrap(deviceName, step, ex);
        }
    }

    /// <summary>
    /// Failures the environment can cause: QEMU refusing a command or going away, the filesystem, a
    /// timeout. Anything else is a bug and propagates as it is.
    /// </summary>
    public static bool IsExpected(Exception ex)
        => ex is QmpException or IOException or UnauthorizedAccessException or TimeoutException or ObjectDisposedException;

    public static SnapshotAccessException Wrap(string? deviceName, string step, Exception ex)
        => new(deviceName, step, ex is QmpCommandException command ? command.Description : ex.Message, ex);
}
