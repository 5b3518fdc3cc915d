using System.Text.Json.Nodes;

namespace Grpc.Backup.Qemu.Internal;

/// <summary>Reads the block graph's nodes, their sizes and named bitmaps.</summary>
internal static class BlockNodeQuery
{
    public static async Task<IReadOnlyDictionary<string, BlockNodeInfo>> QueryAsync(QmpClient qmp, CancellationToken cancellationToken)
    {
        JsonNode? reply = await qmp.ExecuteAsync("query-named-block-nodes", new JsonObject { ["flat"] = true }, cancellationToken);
        var nodes = new Dictionary<string, BlockNodeInfo>(StringComparer.Ordinal);
        foreach (JsonNode? entry in reply?.AsArray() ?? [])
        {
            if (entry is JsonObject node && (string?)node["node-name"] is { Length: > 0 } name)
            {
                nodes[name] = new BlockNodeInfo(name, (string?)node["drv"] ?? string.Empty, (ulong?)node["image"]?["virtual-size"] ?? 0, ParseBitmaps(node["dirty-bitmaps"]));
            }
        }

        return nodes;
    }

    private static List<DirtyBitmapInfo> ParseBitmaps(JsonNode? bitmaps)
    {
        var result = new List<DirtyBitmapInfo>();
        foreach (JsonNode? entry in bitmaps?.AsArray() ?? [])
        {
            // Unnamed bitmaps are QEMU's own (copy-before-write keeps one on the disk node); never ours.
            if (entry is JsonObject bitmap && (string?)bitmap["name"] is { Length: > 0 } name)
            {
                result.Add(new DirtyBitmapInfo(
                    name,
                    Recording: (bool?)bitmap["recording"] ?? false,
                    Busy: (bool?)bitmap["busy"] ?? false,
                    Persistent: (bool?)bitmap["persistent"] ?? false,
                    // QEMU includes the member only when it is true.
                    Inconsistent: (bool?)bitmap["inconsistent"] ?? false,
                    Granularity: (long?)bitmap["granularity"] ?? 0,
                    Count: (long?)bitmap["count"] ?? 0));
            }
        }

        return result;
    }
}
