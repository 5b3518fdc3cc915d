namespace Grpc.Backup.Service.Internal.Tasks;

/// <summary>
/// A test seam, inert unless both variables are set in the service's environment (never by its unit): a guest's task
/// log line containing <c>GRPC_BACKUPD_TEST_PAUSE_AT</c> makes the logging thread write that line to the file named by
/// <c>GRPC_BACKUPD_TEST_PAUSE_FILE</c> and wait there until the file is removed. The crash tests use it to kill -9
/// the service exactly at a step it logs (around the provider's commit: CommitCrashTests); a log line alone would
/// let the service run on while the test reacts.
/// </summary>
internal static class TestPausePoint
{
    private static readonly string? At = Environment.GetEnvironmentVariable("GRPC_BACKUPD_TEST_PAUSE_AT") is { Length: > 0 } at ? at : null;

    private static readonly string? PauseFile = Environment.GetEnvironmentVariable("GRPC_BACKUPD_TEST_PAUSE_FILE") is { Length: > 0 } file ? file : null;

    /// <summary>Returns at once unless this is the configured step; then waits until the test removes the pause file.</summary>
    public static void Reached(string message)
    {
        if (At is null || PauseFile is null || !message.Contains(At, StringComparison.Ordinal))
        {
            return;
        }
        File.WriteAllText(PauseFile, message);
        while (File.Exists(PauseFile))
        {
            Thread.Sleep(50);
        }
    }
}
