using System.Diagnostics;

namespace Grpc.Backup.Conformance.Internal;

/// <summary>Runs a system tool (qemu-img, chown, find, umount) and fails with its stderr when it exits non-zero.</summary>
internal static class Tool
{
    public static async Task<string> RunAsync(string file, IReadOnlyList<string> arguments, CancellationToken cancellationToken)
    {
        using var process = Process.Start(new ProcessStartInfo(file, arguments) { RedirectStandardError = true, RedirectStandardOutput = true })
            ?? throw new InvalidOperationException($"{file} did not start");
        Task<string> output = process.StandardOutput.ReadToEndAsync(cancellationToken);
        Task<string> error = process.StandardError.ReadToEndAsync(cancellationToken);
        await process.WaitForExitAsync(cancellationToken);
        if (process.ExitCode != 0)
        {
            throw new InvalidOperationException($"{file} {string.Join(' ', arguments)} failed: {(await error).Trim()}");
        }
        return await output;
    }
}
