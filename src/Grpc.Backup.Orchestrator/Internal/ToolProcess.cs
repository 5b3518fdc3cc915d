using System.Diagnostics;

namespace Grpc.Backup.Orchestrator.Internal;

/// <summary>
/// Runs a host tool (qemu-img, prlimit) with an argument list, never a shell, and returns its stdout. A non-zero exit
/// or a timeout becomes a <see cref="BackupException"/> carrying the tool's own message.
/// </summary>
internal static class ToolProcess
{
    public static async Task<string> RunAsync(string file, IEnumerable<string> arguments, string what, TimeSpan timeout,
        CancellationToken cancellationToken)
    {
        var info = new ProcessStartInfo(file) { RedirectStandardError = true, RedirectStandardOutput = true };
        foreach (string argument in arguments)
        {
            info.ArgumentList.Add(argument);
        }
        using var process = Process.Start(info) ?? throw new BackupException($"cannot start {file}");
        Task<string> stdout = process.StandardOutput.ReadToEndAsync(cancellationToken);
        Task<string> stderr = process.StandardError.ReadToEndAsync(cancellationToken);
        using (var limit = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken))
        {
            limit.CancelAfter(timeout);
            try
            {
                await process.WaitForExitAsync(limit.Token);
            }
            catch (OperationCanceledException)
            {
                process.Kill(entireProcessTree: true);
                if (cancellationToken.IsCancellationRequested)
                {
                    throw;
                }
                throw new BackupException($"{what} timed out");
            }
        }
        if (process.ExitCode != 0)
        {
            throw new BackupException($"{what} failed: {(await stderr).Trim()}");
        }
        return await stdout;
    }
}
