using System.Text.Json.Nodes;
using Grpc.Backup.Qemu;

namespace Grpc.Backup.Tests.Infrastructure;

/// <summary>
/// What a guest's QEMU holds, read over QMP: block exports, named block nodes, dirty bitmaps and the objects a backup
/// adds (throttle groups). Connect only while no host holds the monitor (qemu-storage-daemon serves one client).
/// </summary>
internal sealed record GuestGraph(IReadOnlyList<string> Exports, IReadOnlyList<string> Nodes, IReadOnlyList<string> Bitmaps,
    IReadOnlyList<string> BackupObjects)
{
    public static async Task<GuestGraph> QueryAsync(string qmpSocket)
    {
        await using var qmp = await QmpClient.ConnectAsync(qmpSocket);
        JsonArray exports = (await qmp.ExecuteAsync("query-block-exports"))!.AsArray();
        JsonArray nodes = (await qmp.ExecuteAsync("query-named-block-nodes", new JsonObject { ["flat"] = true }))!.AsArray();
        JsonArray objects = (await qmp.ExecuteAsync("qom-list", new JsonObject { ["path"] = "/objects" }))!.AsArray();
        return new GuestGraph(
            [.. exports.Select(e => (string)e!["id"]!).Order(StringComparer.Ordinal)],
            [.. nodes.Select(n => (string)n!["node-name"]!).Order(StringComparer.Ordinal)],
            [.. nodes.SelectMany(n => n!["dirty-bitmaps"]?.AsArray() ?? []).Select(b => (string?)b!["name"]).OfType<string>().Order(StringComparer.Ordinal)],
            [.. objects.Select(o => (string)o!["name"]!).Where(n => n.StartsWith("gb", StringComparison.Ordinal)).Order(StringComparer.Ordinal)]);
    }

    /// <summary>Background bitmaps: a backup's recording bitmap that was neither committed nor folded back.</summary>
    public IEnumerable<string> BackgroundBitmaps => Bitmaps.Where(b => b.EndsWith("-bg", StringComparison.Ordinal));

    public override string ToString() =>
        $"exports [{string.Join(' ', Exports)}], nodes [{string.Join(' ', Nodes)}], bitmaps [{string.Join(' ', Bitmaps)}], objects [{string.Join(' ', BackupObjects)}]";
}
