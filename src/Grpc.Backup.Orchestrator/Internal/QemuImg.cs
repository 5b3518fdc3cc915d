using Grpc.Backup.Transport;

namespace Grpc.Backup.Orchestrator.Internal;

/// <summary>qemu-img on images the host owns, run through <see cref="ExternalProcess"/>.</summary>
internal static class QemuImg
{
    private static readonly TimeSpan Timeout = TimeSpan.FromHours(12);

    /// <summary>The virtual size of an image the host owns (never one a provider handed over: those are checked first).</summary>
    public static async Task<ulong> GetVirtualSizeAsync(string path, Inventory.DiskFormat format, CancellationToken cancellationToken)
    {
        string json = await RunAsync(["info", "--output=json", "-U", "-f", format == Inventory.DiskFormat.Qcow2 ? "qcow2" : "raw", path], cancellationToken);
        return (ulong?)System.Text.Json.Nodes.JsonNode.Parse(json)?["virtual-size"]
            ?? throw new BackupException($"qemu-img info gave no virtual size for {path}");
    }

    /// <summary>
    /// Runs qemu-img and returns its stdout. A non-zero exit or a timeout becomes a <see cref="BackupException"/>
    /// carrying qemu-img's own message, as the runners report it.
    /// </summary>
    public static async Task<string> RunAsync(IReadOnlyList<string> arguments, CancellationToken cancellationToken)
    {
        string what = $"qemu-img {arguments[0]}";
        try
        {
            return await ExternalProcess.RunAsync("qemu-img", arguments, cancellationToken, Timeout);
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
