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
        string stdout = await ToolProcess.RunAsync("prlimit",
            ["--as=1073741824", "--cpu=30", "--", "qemu-img", "info", "--output=json", "-U", fdPath],
            $"{device}: inspecting the restore source", TimeSpan.FromSeconds(60), cancellationToken);
        JsonObject report = JsonNode.Parse(stdout) as JsonObject
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
