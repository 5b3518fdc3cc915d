using System.Diagnostics;

namespace Grpc.Backup.Orchestrator.Internal;

/// <summary>Runs qemu-img with an argument list (never a shell) and turns failure into a clear exception.</summary>
internal static class QemuImg
{
    public static async Task RunAsync(IEnumerable<string> arguments, CancellationToken cancellationToken)
    {
        var info = new ProcessStartInfo("qemu-img") { RedirectStandardError = true, RedirectStandardOutput = true };
        foreach (string argument in arguments)
        {
            info.ArgumentList.Add(argument);
        }
        using var process = Process.Start(info) ?? throw new BackupException("cannot start qemu-img");
        Task<string> stderr = process.StandardError.ReadToEndAsync(cancellationToken);
        _ = process.StandardOutput.ReadToEndAsync(cancellationToken);
        await process.WaitForExitAsync(cancellationToken);
        if (process.ExitCode != 0)
        {
            throw new BackupException($"qemu-img {string.Join(' ', info.ArgumentList.Take(1))} failed: {(await stderr).Trim()}");
        }
    }
}
