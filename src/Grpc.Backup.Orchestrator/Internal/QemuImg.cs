namespace Grpc.Backup.Orchestrator.Internal;

/// <summary>qemu-img on images the host owns.</summary>
internal static class QemuImg
{
    /// <summary>The virtual size of an image the host owns (never one a provider handed over: those are checked first).</summary>
    public static async Task<ulong> GetVirtualSizeAsync(string path, Inventory.DiskFormat format, CancellationToken cancellationToken)
    {
        string json = await RunAsync(["info", "--output=json", "-U", "-f", format == Inventory.DiskFormat.Qcow2 ? "qcow2" : "raw", path], cancellationToken);
        return (ulong?)System.Text.Json.Nodes.JsonNode.Parse(json)?["virtual-size"]
            ?? throw new BackupException($"qemu-img info gave no virtual size for {path}");
    }

    public static Task<string> RunAsync(IReadOnlyList<string> arguments, CancellationToken cancellationToken) =>
        ToolProcess.RunAsync("qemu-img", arguments, $"qemu-img {arguments[0]}", TimeSpan.FromHours(12), cancellationToken);
}
