namespace Grpc.Backup.Qemu.Internal;

/// <summary>
/// Undoes what setup did for one disk, in the only order QEMU accepts: export, snapshot-access node,
/// filter back onto the disk, copy-before-write and fleecing nodes; the bitmaps at once after a failure, else
/// when the provider's commit is known (<see cref="SettleBitmapsAsync"/>). A step runs only
/// if its predecessor is undone (or was never done), since otherwise it fails on a permission conflict
/// anyway; failures are collected, not thrown, so that every other step still gets its chance.
/// </summary>
internal sealed class DiskTeardown(QmpClient qmp, DiskSession disk, SnapshotLog log, List<Exception> errors)
{
    private DiskProgress Progress => disk.Progress;

    public async Task RunAsync(bool backupSucceeded, TimeSpan exportDeleteTimeout, CancellationToken cancellationToken)
    {
        if (Progress.ExportAdded)
        {
            await TryAsync("delete NBD export", () => ExportDeletion.DeleteAsync(qmp, disk.ExportId, exportDeleteTimeout, log, cancellationToken), () => Progress.ExportAdded = false);
        }

        if (Progress.ThrottleNodeAdded && !Progress.ExportAdded)
        {
            await TryAsync("delete throttle node", () => SnapshotGraphCommands.DeleteNodeAsync(qmp, disk.ThrottleNode, CancellationToken.None), () => Progress.ThrottleNodeAdded = false);
        }

        if (Progress.ThrottleGroupAdded && !Progress.ThrottleNodeAdded)
        {
            await TryAsync("delete throttle group", () => SnapshotGraphCommands.DeleteObjectAsync(qmp, disk.ThrottleGroupId, CancellationToken.None), () => Progress.ThrottleGroupAdded = false);
        }

        if (Progress.SnapshotNodeAdded && !Progress.ExportAdded && !Progress.ThrottleNodeAdded)
        {
            await TryAsync("delete snapshot-access node", () => SnapshotGraphCommands.DeleteNodeAsync(qmp, disk.SnapshotNode, CancellationToken.None), () => Progress.SnapshotNodeAdded = false);
        }

        if (Progress.FilterSwitched && !Progress.SnapshotNodeAdded)
        {
            await TryAsync("switch filter back to the disk", () => SnapshotGraphCommands.ReopenFilterAsync(qmp, disk.Disk, disk.FormatNode, CancellationToken.None), () => Progress.FilterSwitched = false);
        }

        if (Progress.CbwAdded && !Progress.FilterSwitched)
        {
            await TryAsync("delete copy-before-write node", () => SnapshotGraphCommands.DeleteNodeAsync(qmp, disk.CbwNode, CancellationToken.None), () => Progress.CbwAdded = false);
        }

        if (Progress.FleeceNodeAdded && !Progress.CbwAdded)
        {
            await TryAsync("delete fleecing node", () => SnapshotGraphCommands.DeleteNodeAsync(qmp, disk.FleeceNode, CancellationToken.None), () => Progress.FleeceNodeAdded = false);
        }

        if (Progress.FleecingFileCreated)
        {
            // Even if QEMU still has the node open: unlinking cannot disturb it (it keeps its descriptor and
            // the space comes back when it closes), and no file is left behind either way.
            await TryAsync("delete fleecing image", () => Task.Run(() => FleecingFile.Delete(disk.FleecingPath), CancellationToken.None), () => Progress.FleecingFileCreated = false);
        }

        // After a success the bitmaps wait for the provider's commit (VmSnapshotAccess.SettleBitmapsAsync): until
        // BackupCleanup(success=true) returned OK, the archive may still be dropped.
        if (Progress.RecordingBitmapAdded && !backupSucceeded)
        {
            await SettleBitmapsAsync(providerCommitted: false);
        }
    }

    /// <summary>
    /// Settles the bitmaps once the exports are gone: <paramref name="providerCommitted"/> only after BackupCleanup(success)
    /// returned OK. Until then the stable bitmap is untouched (frozen for Reuse, absent for New) and the background bitmap
    /// records every write since before the instant, so a crash in between is folded back (Reuse) or leaves no base (New).
    /// </summary>
    public Task SettleBitmapsAsync(bool providerCommitted)
        => Progress.RecordingBitmapAdded
            ? TryAsync("update bitmaps", () => FinishBitmapsAsync(providerCommitted), () => Progress.RecordingBitmapAdded = false)
            : Task.CompletedTask;

    private Task FinishBitmapsAsync(bool backupSucceeded)
    {
        string node = disk.FormatNode;
        string stable = disk.BitmapName;
        string background = disk.BackgroundBitmapName;
        List<QmpTransactionAction> actions = [];
        switch (disk.Plan.Outcome)
        {
            case BitmapOutcome.Reuse when backupSucceeded:
                // stable := background. The provider now holds the image at the instant, so the next
                // incremental needs exactly the writes since then, and the background bitmap has recorded
                // all of them (it started before the instant; the few writes before it are re-read, harmless).
                actions.AddRange([BitmapActions.Clear(node, stable), BitmapActions.Merge(node, stable, background), BitmapActions.Enable(node, stable), BitmapActions.Remove(node, background)]);
                log.Info($"{disk.DeviceName}: backup committed; bitmap {stable} now tracks writes since the snapshot");
                break;
            case BitmapOutcome.Reuse:
                // stable |= background. The provider stored nothing usable, so the next incremental must
                // still cover everything since the last successful backup: the frozen bitmap plus every
                // write made during this one. Enable also undoes a freeze that setup did not get to.
                actions.AddRange([BitmapActions.Merge(node, stable, background), BitmapActions.Enable(node, stable), BitmapActions.Remove(node, background)]);
                log.Info($"{disk.DeviceName}: backup failed or not committed; bitmap {stable} keeps every write since the last successful backup");
                break;
            case BitmapOutcome.New when backupSucceeded:
                // The stable bitmap is born only now, as a copy of the background one that has recorded since before
                // the instant: a bitmap younger than the provider's last committed backup never exists.
                actions.AddRange([BitmapActions.Add(node, stable, disk.Disk.PersistentBitmaps), BitmapActions.Merge(node, stable, background), BitmapActions.Remove(node, background)]);
                log.Info($"{disk.DeviceName}: backup committed; new bitmap {stable} tracks writes since the snapshot");
                break;
            default:
                // New and failed: the background bitmap records writes since an instant the provider has no complete
                // image of, so it goes and the next backup is full. (The bitmap it would have replaced was removed at
                // setup: it was unusable or unwanted, and a full backup does not need it.)
                actions.Add(BitmapActions.Remove(node, background));
                log.Info($"{disk.DeviceName}: backup failed or not committed; no bitmap {stable} is kept, so the next backup is full");
                break;
        }

        return qmp.TransactionAsync(actions, properties: null, CancellationToken.None);
    }

    private async Task TryAsync(string step, Func<Task> action, Action onSuccess)
    {
        try
        {
            await action();
            onSuccess();
        }
        catch (Exception ex) when (SnapshotStep.IsExpected(ex) || ex is OperationCanceledException)
        {
            SnapshotAccessException error = SnapshotStep.Wrap(disk.DeviceName, step, ex);
            log.Warning(error.Message);
            errors.Add(error);
        }
    }
}
