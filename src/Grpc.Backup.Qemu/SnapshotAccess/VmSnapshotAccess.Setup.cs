using Grpc.Backup.Qemu.Internal;

namespace Grpc.Backup.Qemu;

/// <summary>Setup phases: inspect, prepare, switch (inside the quiesce window), expose.</summary>
public sealed partial class VmSnapshotAccess
{
    /// <summary>Checks the nodes, reads sizes and bitmap states, and decides each disk's bitmap outcome.</summary>
    private async Task InspectAsync(CancellationToken cancellationToken)
    {
        IReadOnlyDictionary<string, BlockNodeInfo> nodes = await QueryNodesAsync(cancellationToken);
        // Another backup's graph: a running one (another process, or the guest lock bypassed) or one that died. Either
        // way this backup must not switch the filter under it, nor fold its background bitmap.
        string[] foreign = [.. nodes.Keys.Where(IsBackupNode).Order(StringComparer.Ordinal)];
        if (foreign.Length > 0)
        {
            throw new SnapshotAccessException(null, "inspect",
                $"the guest's block graph holds another backup's nodes ({string.Join(", ", foreign)}): a backup of this guest is running, "
                + "or one crashed and was not recovered yet (grpc-backupd recovers its own at start-up)");
        }

        bool recovered = false;
        foreach (DiskSession disk in _disks)
        {
            BlockNodeInfo format = FindNode(nodes, disk, disk.FormatNode, "format");
            BlockNodeInfo filter = FindNode(nodes, disk, disk.FilterNode, "filter");
            if (!string.Equals(filter.Driver, "throttle", StringComparison.Ordinal))
            {
                throw new SnapshotAccessException(disk.DeviceName, "inspect", $"filter node '{disk.FilterNode}' is a '{filter.Driver}' node, not 'throttle'");
            }

            if (format.VirtualSize == 0)
            {
                throw new SnapshotAccessException(disk.DeviceName, "inspect", $"format node '{disk.FormatNode}' reports no virtual size");
            }

            disk.SizeBytes = format.VirtualSize;
            if (format.FindBitmap(disk.BackgroundBitmapName) is not null)
            {
                await RecoverLeftoverAsync(disk, format.FindBitmap(disk.BitmapName), cancellationToken);
                recovered = true;
            }
        }

        if (recovered)
        {
            nodes = await QueryNodesAsync(cancellationToken);
        }

        foreach (DiskSession disk in _disks)
        {
            DirtyBitmapInfo? existing = nodes[disk.FormatNode].FindBitmap(disk.BitmapName);
            if (existing is { Busy: true })
            {
                throw new SnapshotAccessException(disk.DeviceName, "inspect", $"bitmap '{disk.BitmapName}' is in use by another operation (an export or backup still running?)");
            }

            disk.Plan = BitmapDecision.Decide(disk.Disk.Bitmap, existing);
            disk.Granularity = existing?.Granularity ?? 0;
            _log.Info($"{disk.DeviceName}: {disk.SizeBytes} bytes; bitmap {disk.BitmapName} {Describe(existing)}; asked {disk.Disk.Bitmap}, doing {disk.Plan.Outcome}");
        }
    }

    /// <summary>
    /// A background bitmap from a run that died before its teardown: fold it back as a failed backup would
    /// (stable |= background), which can only over-report, never lose a write.
    /// </summary>
    private async Task RecoverLeftoverAsync(DiskSession disk, DirtyBitmapInfo? stable, CancellationToken cancellationToken)
    {
        string node = disk.FormatNode;
        QmpTransactionAction[] actions = stable is { Inconsistent: false }
            ? [BitmapActions.Merge(node, disk.BitmapName, disk.BackgroundBitmapName), BitmapActions.Enable(node, disk.BitmapName), BitmapActions.Remove(node, disk.BackgroundBitmapName)]
            : [BitmapActions.Remove(node, disk.BackgroundBitmapName)];
        _log.Warning($"{disk.DeviceName}: found {disk.BackgroundBitmapName} from an interrupted backup; folding it back");
        cancellationToken.ThrowIfCancellationRequested();
        await SnapshotStep.RunAsync(disk.DeviceName, "recover leftover background bitmap", () => _qmp.TransactionAsync(actions, properties: null, CancellationToken.None));
    }

    /// <summary>NBD server, unwanted bitmaps, fleecing images: everything that need not be inside the window.</summary>
    private async Task PrepareAsync(CancellationToken cancellationToken)
    {
        cancellationToken.ThrowIfCancellationRequested();
        _nbdServer = await SnapshotStep.RunAsync(null, "start NBD server", () => NbdServerLease.AcquireAsync(_qmp, _options.NbdSocketPath, _log, CancellationToken.None));
        foreach (DiskSession disk in _disks)
        {
            if (disk.Plan.RemoveExisting)
            {
                // Removing it early is safe: this backup is full, so the old base is not needed, and if
                // setup fails now the next backup is simply full as well.
                cancellationToken.ThrowIfCancellationRequested();
                await SnapshotStep.RunAsync(disk.DeviceName, "remove old bitmap", () => _qmp.TransactionAsync([BitmapActions.Remove(disk.FormatNode, disk.BitmapName)], properties: null, CancellationToken.None));
            }

            SnapshotStep.Run(disk.DeviceName, "create fleecing image", () => FleecingFile.Create(disk.FleecingPath, disk.SizeBytes));
            disk.Progress.FleecingFileCreated = true;
            cancellationToken.ThrowIfCancellationRequested();
            await SnapshotStep.RunAsync(disk.DeviceName, "add fleecing node", () => SnapshotGraphCommands.AddFleecingNodeAsync(_qmp, disk.FleeceNode, disk.FleeceFileNode, disk.FleecingPath, CancellationToken.None));
            disk.Progress.FleeceNodeAdded = true;
        }

        // QEMU does not check the target's size, and a guest write past its end aborts the whole process.
        IReadOnlyDictionary<string, BlockNodeInfo> nodes = await QueryNodesAsync(cancellationToken);
        foreach (DiskSession disk in _disks)
        {
            ulong size = nodes.TryGetValue(disk.FleeceNode, out BlockNodeInfo? fleece) ? fleece.VirtualSize : 0;
            if (size != disk.SizeBytes)
            {
                throw new SnapshotAccessException(disk.DeviceName, "check fleecing node", $"fleecing node has {size} bytes, the disk {disk.SizeBytes}");
            }
        }
    }

    /// <summary>Inside one quiesce window: every disk's recording bitmap, switch and freeze.</summary>
    private async Task SwitchAsync(CancellationToken cancellationToken)
    {
        Func<CancellationToken, Task<IAsyncDisposable?>>? quiesce = _options.Quiesce;
        // A callback that could not hold the guest (no agent, no run state) answers null: the switch then runs
        // unquiesced, and copy-before-write must protect every cluster.
        IAsyncDisposable? window = quiesce is null ? null : await quiesce(cancellationToken);
        try
        {
            foreach (DiskSession disk in _disks)
            {
                await SwitchDiskAsync(disk, quiesced: window is not null, cancellationToken);
            }
        }
        catch
        {
            if (window is not null)
            {
                await EndQuiesceAfterFailureAsync(window);
            }

            throw;
        }

        if (window is not null)
        {
            await window.DisposeAsync();
        }
    }

    private async Task EndQuiesceAfterFailureAsync(IAsyncDisposable window)
    {
        try
        {
            await window.DisposeAsync();
        }
#pragma warning disable CA1031 // The switch failure is the one to report; the guest must be resumed regardless.
        catch (Exception ex)
#pragma warning restore CA1031
        {
            _log.Warning($"ending the quiesce after a failed switch also failed: {ex.Message}");
        }
    }

    /// <summary>Steps (a) to (c) of the class remarks for one disk.</summary>
    private async Task SwitchDiskAsync(DiskSession disk, bool quiesced, CancellationToken cancellationToken)
    {
        string node = disk.FormatNode;
        switch (disk.Plan.Outcome)
        {
            case BitmapOutcome.Reuse:
                // Never persistent: it only lives for this backup, and a crash must not leave it in the image.
                cancellationToken.ThrowIfCancellationRequested();
                await SnapshotStep.RunAsync(disk.DeviceName, "add background bitmap", () => _qmp.TransactionAsync([BitmapActions.Add(node, disk.BackgroundBitmapName, persistent: false, disk.Granularity)], properties: null, CancellationToken.None));
                disk.Progress.RecordingBitmapAdded = true;
                break;
            case BitmapOutcome.New:
                // Also the background one: the stable bitmap is created from it only once the provider committed, so a
                // crash or a failed commit never leaves a base the provider has no image for.
                cancellationToken.ThrowIfCancellationRequested();
                await SnapshotStep.RunAsync(disk.DeviceName, "add background bitmap", () => _qmp.TransactionAsync([BitmapActions.Add(node, disk.BackgroundBitmapName, persistent: false)], properties: null, CancellationToken.None));
                disk.Progress.RecordingBitmapAdded = true;
                break;
        }

        string? cbwBitmap = disk.Plan.Outcome == BitmapOutcome.Reuse && quiesced ? disk.BitmapName : null;
        cancellationToken.ThrowIfCancellationRequested();
        await SnapshotStep.RunAsync(disk.DeviceName, "add copy-before-write node", () => SnapshotGraphCommands.AddCopyBeforeWriteAsync(_qmp, disk.CbwNode, node, disk.FleeceNode, cbwBitmap, _options.CbwTimeout, CancellationToken.None));
        disk.Progress.CbwAdded = true;
        cancellationToken.ThrowIfCancellationRequested();
        await SnapshotStep.RunAsync(disk.DeviceName, "switch filter to copy-before-write", () => SnapshotGraphCommands.ReopenFilterAsync(_qmp, disk.Disk, disk.CbwNode, CancellationToken.None));
        disk.Progress.FilterSwitched = true;

        if (disk.Plan.Outcome == BitmapOutcome.Reuse)
        {
            cancellationToken.ThrowIfCancellationRequested();
            await SnapshotStep.RunAsync(disk.DeviceName, "freeze bitmap", () => _qmp.TransactionAsync([BitmapActions.Disable(node, disk.BitmapName)], properties: null, CancellationToken.None));
        }
    }

    /// <summary>snapshot-access nodes, the bandwidth throttle and NBD exports, after the window.</summary>
    private async Task ExposeAsync(CancellationToken cancellationToken)
    {
        var exports = new List<SnapshotExport>(_disks.Length);
        foreach (DiskSession disk in _disks)
        {
            cancellationToken.ThrowIfCancellationRequested();
            await SnapshotStep.RunAsync(disk.DeviceName, "add snapshot-access node", () => SnapshotGraphCommands.AddSnapshotAccessAsync(_qmp, disk.SnapshotNode, disk.CbwNode, CancellationToken.None));
            disk.Progress.SnapshotNodeAdded = true;

            if (_options.BandwidthLimit > 0)
            {
                cancellationToken.ThrowIfCancellationRequested();
                await SnapshotStep.RunAsync(disk.DeviceName, "add throttle group", () => SnapshotGraphCommands.AddReadThrottleGroupAsync(_qmp, disk.ThrottleGroupId, _options.BandwidthLimit, CancellationToken.None));
                disk.Progress.ThrottleGroupAdded = true;
                cancellationToken.ThrowIfCancellationRequested();
                await SnapshotStep.RunAsync(disk.DeviceName, "add throttle node", () => SnapshotGraphCommands.AddThrottleNodeAsync(_qmp, disk.ThrottleNode, disk.ThrottleGroupId, disk.SnapshotNode, CancellationToken.None));
                disk.Progress.ThrottleNodeAdded = true;
            }

            string? exportedBitmap = disk.Plan.Outcome == BitmapOutcome.Reuse ? disk.BitmapName : null;
            cancellationToken.ThrowIfCancellationRequested();
            await SnapshotStep.RunAsync(disk.DeviceName, "add NBD export", () => SnapshotGraphCommands.AddExportAsync(_qmp, disk.ExportId, disk.ExportedNode, disk.DeviceName, disk.FormatNode, exportedBitmap, CancellationToken.None));
            disk.Progress.ExportAdded = true;

            exports.Add(new SnapshotExport
            {
                DeviceName = disk.DeviceName,
                ExportName = disk.DeviceName,
                SizeBytes = disk.SizeBytes,
                Bitmap = disk.Plan.Outcome,
                BitmapContext = exportedBitmap is null ? null : $"qemu:dirty-bitmap:{exportedBitmap}",
                NbdSocketPath = _options.NbdSocketPath,
            });
        }

        Exports = exports;
    }

    private Task<IReadOnlyDictionary<string, BlockNodeInfo>> QueryNodesAsync(CancellationToken cancellationToken)
        => SnapshotStep.RunAsync(null, "query block nodes", () => BlockNodeQuery.QueryAsync(_qmp, cancellationToken));

    private static BlockNodeInfo FindNode(IReadOnlyDictionary<string, BlockNodeInfo> nodes, DiskSession disk, string nodeName, string role)
        => nodes.TryGetValue(nodeName, out BlockNodeInfo? node)
            ? node
            : throw new SnapshotAccessException(disk.DeviceName, "inspect", $"{role} node '{nodeName}' does not exist");

    private static string Describe(DirtyBitmapInfo? bitmap) => bitmap switch
    {
        null => "missing",
        { Inconsistent: true } => "inconsistent (unclean stop)",
        { Recording: false } => "not recording",
        _ => $"valid ({bitmap.Count} dirty bytes)",
    };
}
