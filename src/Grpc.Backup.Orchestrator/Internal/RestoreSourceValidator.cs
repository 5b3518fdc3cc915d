using System.Diagnostics;
using System.Text.Json.Nodes;
using Microsoft.Win32.SafeHandles;

namespace Grpc.Backup.Orchestrator.Internal;

/// <summary>
/// Judges a file or block device a provider hands over as a restore source. The host reads it as raw whatever it
/// contains, but an image format inside (qcow2 with a backing file pointing at a host file, an external data file,
/// a json: backing, or a qcow2 renamed to look raw) is refused outright: some consumer downstream might probe it.
/// qemu-img inspects the fd the host keeps open (through /proc/PID/fd), never a path, under prlimit.
/// </summary>
internal static class RestoreSourceValidator
{
    public static async Task ValidateAsync(SafeFileHandle handle, string device, CancellationToken cancellationToken)
    {
        string fdPath = $"/proc/{Environment.ProcessId}/fd/{handle.DangerousGetHandle()}";
        var info = new ProcessStartInfo("prlimit")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        foreach (string arg in (string[])["--as=1073741824", "--cpu=30", "--", "qemu-img", "info", "--output=json", "-U", fdPath])
        {
            info.ArgumentList.Add(arg);
        }
        using var process = Process.Start(info) ?? throw new BackupException("cannot start qemu-img");
        Task<string> stdout = process.StandardOutput.ReadToEndAsync(cancellationToken);
        Task<string> stderr = process.StandardError.ReadToEndAsync(cancellationToken);
        using (var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken))
        {
            timeout.CancelAfter(TimeSpan.FromSeconds(60));
            try
            {
                await process.WaitForExitAsync(timeout.Token);
            }
            catch (OperationCanceledException)
            {
                process.Kill(entireProcessTree: true);
                throw new BackupException($"{device}: inspecting the restore source timed out");
            }
        }
        if (process.ExitCode != 0)
        {
            throw new BackupException($"{device}: the restore source cannot be inspected: {(await stderr).Trim()}");
        }
        JsonObject report = JsonNode.Parse(await stdout) as JsonObject
            ?? throw new BackupException($"{device}: qemu-img info gave no report");
        string format = (string?)report["format"] ?? "unknown";
        if (format == "raw")
        {
            return;
        }
        var reasons = new List<string> { $"it is a {format} image, not raw data" };
        if ((string?)report["backing-filename"] is { } backing)
        {
            reasons.Add($"with backing file '{backing}'");
        }
        if ((string?)report["format-specific"]?["data"]?["data-file"] is { } dataFile)
        {
            reasons.Add($"with external data file '{dataFile}'");
        }
        throw new BackupException($"{device}: restore source refused: {string.Join(", ", reasons)}");
    }
}
