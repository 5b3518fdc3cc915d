using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using Grpc.Backup.Qemu.Internal;

namespace Grpc.Backup.Qemu;

/// <summary>
/// Recovery after the process that set up snapshot access died without its teardown (kill -9 of the host service):
/// QEMU still holds the exports, the snapshot-access and copy-before-write nodes, the fleecing nodes, the
/// background bitmaps and perhaps its NBD server. All of them carry this class's naming (<c>gbXXXXXXXX-…</c>), so
/// they are recognised without any state from the dead process.
/// </summary>
public sealed partial class VmSnapshotAccess
{
    /// <summary>
    /// Removes every leftover of an interrupted snapshot access on <paramref name="disks"/>, in teardown order, and
    /// settles their bitmaps as a backup whose commit is unknown: a background bitmap is folded into its stable one
    /// (stable |= background: the next incremental still covers every write since the last successful backup), or
    /// removed when there is no stable one (an interrupted full backup: the next is full too). A recording stable bitmap
    /// without a background one is a committed base (a full backup creates its stable bitmap only after the commit) and
    /// stays; a frozen or inconsistent one is removed and the next backup is full.
    /// </summary>
    /// <remarks>The caller must make sure no live backup of these disks is running (the guest lock): every
    /// <c>gbXXXXXXXX-…</c> node is taken for a leftover.</remarks>
    /// <param name="nbdSocketPath">The interrupted backup's private NBD socket: if it still exists, that backup
    /// started QEMU's NBD server, which is stopped.</param>
    /// <returns>What was found and removed, one line each, for the caller's log.</returns>
    public static async Task<IReadOnlyList<string>> RecoverAsync(QmpClient qmp, IReadOnlyList<SnapshotDisk> disks, SnapshotAccessOptions options,
        string? nbdSocketPath, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(qmp);
        ArgumentNullException.ThrowIfNull(disks);
        ArgumentNullException.ThrowIfNull(options);
        var done = new List<string>();
        var log = new SnapshotLog(options.Log);

        JsonNode? exports = await qmp.ExecuteAsync("query-block-exports", arguments: null, cancellationToken);
        foreach (string id in (exports?.AsArray() ?? []).Select(e => (string?)e?["id"]).OfType<string>().Where(id => LeftoverName("exp").IsMatch(id)))
        {
            await ExportDeletion.DeleteAsync(qmp, id, options.ExportDeleteTimeout, log, cancellationToken);
            done.Add($"deleted NBD export {id}");
        }

        IReadOnlyDictionary<string, BlockNodeInfo> nodes = await BlockNodeQuery.QueryAsync(qmp, cancellationToken);
        // The bandwidth throttle between the exports and the snapshot-access node, then its group object.
        await DeleteNodesAsync(qmp, "thr", done, cancellationToken);
        foreach (string throttle in nodes.Keys.Where(n => LeftoverName("thr").IsMatch(n)))
        {
            string group = ThrottleNumber().Replace(throttle, "-tg");
            try
            {
                await SnapshotGraphCommands.DeleteObjectAsync(qmp, group, cancellationToken);
                done.Add($"deleted throttle group {group}");
            }
            catch (QmpCommandException)
            {
                // Never created, or already gone.
            }
        }
        await DeleteNodesAsync(qmp, "snap", done, cancellationToken);
        if (nodes.Keys.Any(LeftoverName("cbw").IsMatch))
        {
            foreach (SnapshotDisk disk in disks)
            {
                // Reopening onto the format node is harmless for a disk whose filter was never switched.
                await SnapshotGraphCommands.ReopenFilterAsync(qmp, disk, disk.FormatNode, cancellationToken);
                done.Add($"{disk.DeviceName}: switched filter {disk.FilterNode} back onto {disk.FormatNode}");
            }
        }
        await DeleteNodesAsync(qmp, "cbw", done, cancellationToken);
        await DeleteNodesAsync(qmp, "fl", done, cancellationToken);
        await DeleteNodesAsync(qmp, "ff", done, cancellationToken);
        if (Directory.Exists(options.FleecingDirectory))
        {
            foreach (string file in Directory.EnumerateFiles(options.FleecingDirectory).Where(f => FleecingFileName().IsMatch(Path.GetFileName(f))))
            {
                FleecingFile.Delete(file);
                done.Add($"deleted fleecing image {file}");
            }
        }

        foreach (SnapshotDisk disk in disks)
        {
            BlockNodeInfo? format = nodes.GetValueOrDefault(disk.FormatNode);
            if (format is null)
            {
                continue;
            }
            string stable = options.GetBitmapName(disk.DeviceName);
            string background = stable + "-bg";
            DirtyBitmapInfo? stableInfo = format.FindBitmap(stable);
            if (format.FindBitmap(background) is not null)
            {
                QmpTransactionAction[] actions = stableInfo is { Inconsistent: false }
                    ? [BitmapActions.Merge(disk.FormatNode, stable, background), BitmapActions.Enable(disk.FormatNode, stable), BitmapActions.Remove(disk.FormatNode, background)]
                    : [BitmapActions.Remove(disk.FormatNode, background)];
                await qmp.TransactionAsync(actions, properties: null, cancellationToken);
                done.Add($"{disk.DeviceName}: folded {background} back into {stable}");
            }
            else if (stableInfo is { IsUsableBase: false })
            {
                await qmp.TransactionAsync([BitmapActions.Remove(disk.FormatNode, stable)], properties: null, cancellationToken);
                done.Add($"{disk.DeviceName}: removed {stable}, which the interrupted backup left frozen or inconsistent; the next backup is full");
            }
        }

        if (nbdSocketPath is not null && File.Exists(nbdSocketPath))
        {
            try
            {
                await qmp.ExecuteAsync("nbd-server-stop", arguments: null, cancellationToken);
                done.Add("stopped QEMU's NBD server");
            }
            catch (QmpCommandException ex)
            {
                done.Add($"NBD server: {ex.Description}");
            }
            File.Delete(nbdSocketPath);
        }
        return done;
    }

    private static async Task DeleteNodesAsync(QmpClient qmp, string kind, List<string> done, CancellationToken cancellationToken)
    {
        // Queried afresh: deleting a node can take implicitly created children with it.
        IReadOnlyDictionary<string, BlockNodeInfo> current = await BlockNodeQuery.QueryAsync(qmp, cancellationToken);
        foreach (string node in current.Keys.Where(n => LeftoverName(kind).IsMatch(n)).Order(StringComparer.Ordinal))
        {
            await SnapshotGraphCommands.DeleteNodeAsync(qmp, node, cancellationToken);
            done.Add($"deleted node {node}");
        }
    }

    /// <summary>Whether a node or export id is one that snapshot access creates (<c>gbXXXXXXXX-…</c>).</summary>
    public static bool IsBackupNode(string name) => BackupNodeName().IsMatch(name);

    private static Regex LeftoverName(string kind) => kind switch
    {
        "exp" => ExportName(),
        "snap" => SnapNode(),
        "cbw" => CbwNode(),
        "fl" => FleeceNode(),
        "thr" => ThrottleNode(),
        _ => FleeceFileNode(),
    };

    [GeneratedRegex("^gb[0-9a-f]{8}-(exp|snap|cbw|fl|ff|thr|tg)[0-9]+\\z")]
    private static partial Regex BackupNodeName();

    [GeneratedRegex("^gb[0-9a-f]{8}-exp[0-9]+\\z")]
    private static partial Regex ExportName();

    [GeneratedRegex("^gb[0-9a-f]{8}-snap[0-9]+\\z")]
    private static partial Regex SnapNode();

    [GeneratedRegex("^gb[0-9a-f]{8}-cbw[0-9]+\\z")]
    private static partial Regex CbwNode();

    [GeneratedRegex("^gb[0-9a-f]{8}-fl[0-9]+\\z")]
    private static partial Regex FleeceNode();

    [GeneratedRegex("^gb[0-9a-f]{8}-thr[0-9]+\\z")]
    private static partial Regex ThrottleNode();

    [GeneratedRegex("-thr(?=[0-9]+\\z)")]
    private static partial Regex ThrottleNumber();

    [GeneratedRegex("^gb[0-9a-f]{8}-ff[0-9]+\\z")]
    private static partial Regex FleeceFileNode();

    [GeneratedRegex("^fleece-[0-9a-f]{8}-[0-9]+\\.raw\\z")]
    private static partial Regex FleecingFileName();
}
