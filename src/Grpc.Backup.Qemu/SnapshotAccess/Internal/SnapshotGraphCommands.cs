using System.Text.Json.Nodes;

namespace Grpc.Backup.Qemu.Internal;

/// <summary>The QMP commands that build and dismantle the fleecing graph of one disk.</summary>
internal static class SnapshotGraphCommands
{
    /// <summary>
    /// A raw fleecing node. <c>discard:"unmap"</c> on both layers is what lets a provider's NBD TRIM punch
    /// the copied data out of the file; without it on either layer the space is never given back.
    /// </summary>
    public static Task AddFleecingNodeAsync(QmpClient qmp, string nodeName, string fileNodeName, string path, CancellationToken cancellationToken)
        => qmp.ExecuteAsync("blockdev-add", new JsonObject
        {
            ["driver"] = "raw",
            ["node-name"] = nodeName,
            ["discard"] = "unmap",
            ["file"] = new JsonObject
            {
                ["driver"] = "file",
                // Named, so that a leftover is recognisable; an inline child is deleted with its parent.
                ["node-name"] = fileNodeName,
                ["filename"] = path,
                ["discard"] = "unmap",
            },
        }, cancellationToken);

    /// <summary>
    /// The copy-before-write filter. <c>break-snapshot</c> keeps the guest running when the fleecing store
    /// fails or fills: the snapshot breaks instead (every later read fails), which the reader detects.
    /// </summary>
    /// <param name="bitmapName">
    /// Restricts copying (and snapshot reads) to this bitmap's dirty clusters. QEMU copies the bitmap when
    /// the filter opens; later changes to it do not matter.
    /// </param>
    public static Task AddCopyBeforeWriteAsync(QmpClient qmp, string nodeName, string formatNode, string targetNode, string? bitmapName, TimeSpan cbwTimeout, CancellationToken cancellationToken)
    {
        var arguments = new JsonObject
        {
            ["driver"] = "copy-before-write",
            ["node-name"] = nodeName,
            ["file"] = formatNode,
            ["target"] = targetNode,
            ["on-cbw-error"] = "break-snapshot",
            ["cbw-timeout"] = (uint)Math.Ceiling(cbwTimeout.TotalSeconds),
        };
        if (bitmapName is not null)
        {
            arguments["bitmap"] = new JsonObject { ["node"] = formatNode, ["name"] = bitmapName };
        }

        return qmp.ExecuteAsync("blockdev-add", arguments, cancellationToken);
    }

    /// <summary>
    /// Points the throttle filter's <c>file</c> child at <paramref name="childNode"/>. Every option is
    /// restated because <c>blockdev-reopen</c> resets omitted options to their defaults.
    /// </summary>
    public static Task ReopenFilterAsync(QmpClient qmp, SnapshotDisk disk, string childNode, CancellationToken cancellationToken)
        => qmp.ExecuteAsync("blockdev-reopen", new JsonObject
        {
            ["options"] = new JsonArray(new JsonObject
            {
                ["driver"] = "throttle",
                ["node-name"] = disk.FilterNode,
                ["throttle-group"] = disk.ThrottleGroup,
                ["file"] = childNode,
            }),
        }, cancellationToken);

    /// <summary>
    /// The read side of the snapshot. <c>discard:"unmap"</c> makes an NBD TRIM reach the fleecing image;
    /// without it TRIM is silently a no-op.
    /// </summary>
    public static Task AddSnapshotAccessAsync(QmpClient qmp, string nodeName, string cbwNode, CancellationToken cancellationToken)
        => qmp.ExecuteAsync("blockdev-add", new JsonObject
        {
            ["driver"] = "snapshot-access",
            ["node-name"] = nodeName,
            ["file"] = cbwNode,
            ["discard"] = "unmap",
        }, cancellationToken);

    /// <summary>
    /// The NBD export. Writable only so that TRIM is offered; snapshot-access refuses writes itself.
    /// The bitmap must be node-qualified: the snapshot-access node's chain does not contain the disk node,
    /// so a bare name is not found.
    /// </summary>
    public static Task AddExportAsync(QmpClient qmp, string exportId, string nodeName, string exportName, string formatNode, string? bitmapName, CancellationToken cancellationToken)
    {
        var arguments = new JsonObject
        {
            ["type"] = "nbd",
            ["id"] = exportId,
            ["node-name"] = nodeName,
            ["name"] = exportName,
            ["writable"] = true,
        };
        if (bitmapName is not null)
        {
            arguments["bitmaps"] = new JsonArray(new JsonObject { ["node"] = formatNode, ["name"] = bitmapName });
        }

        return qmp.ExecuteAsync("block-export-add", arguments, cancellationToken);
    }

    /// <summary>
    /// A throttle group that limits reads to <paramref name="bytesPerSecond"/>: the host's own enforcement of the
    /// job's bandwidth limit, whatever the provider does. QEMU allows a burst of a tenth of a second by default.
    /// </summary>
    public static Task AddReadThrottleGroupAsync(QmpClient qmp, string groupId, ulong bytesPerSecond, CancellationToken cancellationToken)
        => qmp.ExecuteAsync("object-add", new JsonObject
        {
            ["qom-type"] = "throttle-group",
            ["id"] = groupId,
            ["limits"] = new JsonObject { ["bps-read"] = bytesPerSecond },
        }, cancellationToken);

    /// <summary>
    /// The throttle filter between the snapshot-access node and the exports. <c>discard:"unmap"</c> passes a
    /// provider's TRIM or punch-hole down; every layer drops discards without it.
    /// </summary>
    public static Task AddThrottleNodeAsync(QmpClient qmp, string nodeName, string groupId, string childNode, CancellationToken cancellationToken)
        => qmp.ExecuteAsync("blockdev-add", new JsonObject
        {
            ["driver"] = "throttle",
            ["node-name"] = nodeName,
            ["throttle-group"] = groupId,
            ["file"] = childNode,
            ["discard"] = "unmap",
        }, cancellationToken);

    public static Task DeleteObjectAsync(QmpClient qmp, string id, CancellationToken cancellationToken)
        => qmp.ExecuteAsync("object-del", new JsonObject { ["id"] = id }, cancellationToken);

    public static Task DeleteNodeAsync(QmpClient qmp, string nodeName, CancellationToken cancellationToken)
        => qmp.ExecuteAsync("blockdev-del", new JsonObject { ["node-name"] = nodeName }, cancellationToken);
}
