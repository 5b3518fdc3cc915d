using Grpc.Backup.Transport;

namespace Grpc.Backup.Orchestrator.Internal;

/// <summary>
/// Runs a host tool (qemu-img, prlimit) through <see cref="ExternalProcess"/> and returns its stdout. A non-zero exit
/// or a timeout becomes a <see cref="BackupException"/> carrying the tool's own message, as the runners report it.
/// </summary>
internal static class ToolProcess
{
    public static async Task<string> RunAsync(string file, IReadOnlyList<string> arguments, string what, TimeSpan timeout,
        CancellationToken cancellationToken)
    {
        try
        {
            return await ExternalProcess.RunAsync(file, arguments, cancellationToken, timeout);
        }
        catch (ExternalProcessException e) when (e.ExitCode == -1)
        {
            throw new BackupException(e.ErrorOutput.Length > 0 ? $"{what} timed out: {ExternalProcess.Shorten(e.ErrorOutput)}" : $"{what}: {e.Message}");
        }
        catch (ExternalProcessException e)
        {
            throw new BackupException($"{what} failed: {ExternalProcess.Shorten(e.ErrorOutput)}");
        }
    }
}
