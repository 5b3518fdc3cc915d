using System.Text.Json;
using System.Text.Json.Nodes;
using Grpc.Backup.Transport;

namespace Grpc.Backup.Qemu.Internal;

/// <summary>What <c>qemu-img info</c> says about an image that snapshot access needs: size and qcow2 bitmaps.</summary>
internal sealed record ImageInfo(ulong VirtualSize, IReadOnlyList<DirtyBitmapInfo> Bitmaps)
{
    /// <summary>
    /// Reads the image with <c>-U</c> (no lock: the VM is stopped, and a stale lock must not block the
    /// backup) and the format pinned (never probe an image a guest could have written).
    /// </summary>
    public static async Task<ImageInfo> ReadAsync(string imagePath, string format, CancellationToken cancellationToken)
    {
        string json = await ExternalProcess.RunAsync("qemu-img", ["info", "--output=json", "-U", "-f", format, imagePath], cancellationToken);
        JsonNode info = JsonNode.Parse(json) ?? throw new JsonException("qemu-img info printed nothing");
        var bitmaps = new List<DirtyBitmapInfo>();
        foreach (JsonNode? entry in info["format-specific"]?["data"]?["bitmaps"]?.AsArray() ?? [])
        {
            if (entry is JsonObject bitmap && (string?)bitmap["name"] is { Length: > 0 } name)
            {
                string[] flags = [.. (bitmap["flags"]?.AsArray() ?? []).Select(f => (string?)f ?? string.Empty)];
                // "auto": enabled, records while the VM runs. "in-use": the image was not closed cleanly
                // while the bitmap was loaded, so it missed writes.
                bitmaps.Add(new DirtyBitmapInfo(
                    name,
                    Recording: flags.Contains("auto"),
                    Busy: false,
                    Persistent: true,
                    Inconsistent: flags.Contains("in-use"),
                    Granularity: (long?)bitmap["granularity"] ?? 0,
                    Count: 0));
            }
        }

        return new ImageInfo((ulong?)info["virtual-size"] ?? throw new JsonException("qemu-img info reported no virtual-size"), bitmaps);
    }
}
