using Grpc.Backup.Qemu.Tests.Infrastructure;
using Xunit.Abstractions;

namespace Grpc.Backup.Qemu.Tests.SnapshotAccess;

/// <summary>The bitmap lifecycle across backups: reuse, frozen export, background bitmap folded back.</summary>
public sealed class IncrementalTests(ITestOutputHelper output)
{
    private const long MiB = 1 << 20;

    private static readonly (long Offset, long Length)[] s_before = [(1 * MiB, 4096), (5 * MiB + 100, 200 * 1024), (20 * MiB, MiB)];
    private static readonly (long Offset, long Length)[] s_during = [(28 * MiB, 64 * 1024), (30 * MiB + 4096, 8192)];

    [Fact(Timeout = TestTimeouts.Test)]
    public async Task Reuse_exports_exactly_the_writes_since_the_last_backup_and_success_moves_the_base()
    {
        await using StorageDaemonVm vm = await StorageDaemonVm.StartAsync();
        await vm.TakeFullBackupAsync(output);
        await vm.GuestWriteAllAsync(s_before);

        await using (VmSnapshotAccess second = await SetupAsync(vm, BitmapRequest.Use))
        {
            await vm.GuestWriteAllAsync(s_during); // after the instant: not in this backup's bitmap
            for (int disk = 0; disk < StorageDaemonVm.DiskCount; disk++)
            {
                SnapshotExport export = second.Exports[disk];
                Assert.Equal(BitmapOutcome.Reuse, export.Bitmap);
                Assert.Equal($"qemu:dirty-bitmap:{StorageDaemonVm.BitmapName(disk)}", export.BitmapContext);
                long granularity = (await vm.BitmapsAsync(disk))[StorageDaemonVm.BitmapName(disk)].Granularity;
                string uri = NbdTool.Uri(export);

                Assert.Equal(SnapshotAssert.Aligned(granularity, s_before), await vm.Nbd.DirtyExtentsAsync(uri, export.BitmapContext!));
                Assert.Null(await vm.Nbd.ReadErrorAsync(uri, 20 * MiB, MiB));
                // Copy-before-write protects only the dirty clusters, so a clean one cannot be read.
                Assert.Equal("EINVAL", await vm.Nbd.ReadErrorAsync(uri, 10 * MiB, 64 * 1024));
            }

            await second.TeardownAsync(backupSucceeded: true);
            await second.SettleBitmapsAsync(providerCommitted: true);
        }

        // Only what was written during backup #2: the background bitmap became the base.
        await AssertNextBackupDirtyAsync(vm, s_during);
        await SnapshotAssert.LeftNothingAsync(vm);
    }

    [Fact(Timeout = TestTimeouts.Test)]
    public async Task Failed_incremental_keeps_the_earlier_writes_and_those_made_during_it()
    {
        await using StorageDaemonVm vm = await StorageDaemonVm.StartAsync();
        await vm.TakeFullBackupAsync(output);
        await vm.GuestWriteAllAsync(s_before);

        await using (VmSnapshotAccess failed = await SetupAsync(vm, BitmapRequest.Use))
        {
            Assert.All(failed.Exports, e => Assert.Equal(BitmapOutcome.Reuse, e.Bitmap));
            await vm.GuestWriteAllAsync(s_during);
            await failed.TeardownAsync(backupSucceeded: false);
        }

        await AssertNextBackupDirtyAsync(vm, [.. s_before, .. s_during]);
        await SnapshotAssert.LeftNothingAsync(vm);
    }

    [Fact(Timeout = TestTimeouts.Test)]
    public async Task Failed_full_backup_drops_its_new_bitmap_so_the_next_is_full_again()
    {
        await using StorageDaemonVm vm = await StorageDaemonVm.StartAsync();
        await using (VmSnapshotAccess failed = await SetupAsync(vm, BitmapRequest.Use))
        {
            Assert.All(failed.Exports, e => Assert.Equal(BitmapOutcome.New, e.Bitmap));
            await failed.TeardownAsync(backupSucceeded: false);
        }

        Assert.Empty(await vm.BitmapsAsync(0));
        Assert.Empty(await vm.BitmapsAsync(1));
        await vm.TakeFullBackupAsync(output);
        await SnapshotAssert.LeftNothingAsync(vm);
    }

    [Fact(Timeout = TestTimeouts.Test)]
    public async Task None_removes_an_existing_bitmap_and_exports_the_whole_disk()
    {
        await using StorageDaemonVm vm = await StorageDaemonVm.StartAsync();
        await vm.TakeFullBackupAsync(output);
        await vm.GuestWriteAllAsync(s_before);

        await using (VmSnapshotAccess none = await SetupAsync(vm, BitmapRequest.None))
        {
            for (int disk = 0; disk < StorageDaemonVm.DiskCount; disk++)
            {
                Assert.Equal(BitmapOutcome.None, none.Exports[disk].Bitmap);
                Assert.Null(none.Exports[disk].BitmapContext);
                Assert.Empty(await vm.BitmapsAsync(disk));
                Assert.Null(await vm.Nbd.ReadErrorAsync(NbdTool.Uri(none.Exports[disk]), 10 * MiB, MiB));
            }

            await none.TeardownAsync(backupSucceeded: true);
            await none.SettleBitmapsAsync(providerCommitted: true);
        }

        Assert.Empty(await vm.BitmapsAsync(0));
        Assert.Empty(await vm.BitmapsAsync(1));
        await SnapshotAssert.LeftNothingAsync(vm);
    }

    [Fact(Timeout = TestTimeouts.Test)]
    public async Task New_replaces_an_existing_bitmap_with_one_that_starts_at_the_instant()
    {
        await using StorageDaemonVm vm = await StorageDaemonVm.StartAsync();
        await vm.TakeFullBackupAsync(output);
        await vm.GuestWriteAllAsync(s_before);
        Assert.True((await vm.BitmapsAsync(0))[StorageDaemonVm.BitmapName(0)].Count > 0);

        await using (VmSnapshotAccess full = await SetupAsync(vm, BitmapRequest.New))
        {
            for (int disk = 0; disk < StorageDaemonVm.DiskCount; disk++)
            {
                Assert.Equal(BitmapOutcome.New, full.Exports[disk].Bitmap);
                Assert.Null(full.Exports[disk].BitmapContext);
                // The earlier writes are gone with the old bitmap; the new base is born at the commit, from the
                // background bitmap that records meanwhile.
                var bitmaps = await vm.BitmapsAsync(disk);
                Assert.False(bitmaps.ContainsKey(StorageDaemonVm.BitmapName(disk)));
                var background = bitmaps[StorageDaemonVm.BitmapName(disk) + "-bg"];
                Assert.True(background.Recording);
                Assert.Equal(0, background.Count);
            }

            await vm.GuestWriteAllAsync(s_during);
            await full.TeardownAsync(backupSucceeded: true);
            await full.SettleBitmapsAsync(providerCommitted: true);
        }

        await AssertNextBackupDirtyAsync(vm, s_during);
        await SnapshotAssert.LeftNothingAsync(vm);
    }

    [Fact(Timeout = TestTimeouts.Test)]
    public async Task Incremental_the_provider_did_not_commit_keeps_every_write_since_the_last_commit()
    {
        await using StorageDaemonVm vm = await StorageDaemonVm.StartAsync();
        await vm.TakeFullBackupAsync(output);
        await vm.GuestWriteAllAsync(s_before);
        (long Offset, long Length)[] afterTeardown = [(26 * MiB, 4096)];

        await using (VmSnapshotAccess uncommitted = await SetupAsync(vm, BitmapRequest.Use))
        {
            await vm.GuestWriteAllAsync(s_during);
            // The provider stored every export, so teardown succeeds; but BackupCleanup(success=true) then fails.
            await uncommitted.TeardownAsync(backupSucceeded: true);
            for (int disk = 0; disk < StorageDaemonVm.DiskCount; disk++)
            {
                // Until the commit is known the base has not moved: the stable bitmap is still frozen.
                Assert.False((await vm.BitmapsAsync(disk))[StorageDaemonVm.BitmapName(disk)].Recording);
            }

            await vm.GuestWriteAllAsync(afterTeardown);
            await uncommitted.SettleBitmapsAsync(providerCommitted: false);
        }

        await AssertNextBackupDirtyAsync(vm, [.. s_before, .. s_during, .. afterTeardown]);
        await SnapshotAssert.LeftNothingAsync(vm);
    }

    [Fact(Timeout = TestTimeouts.Test)]
    public async Task Full_backup_the_provider_did_not_commit_leaves_no_base()
    {
        await using StorageDaemonVm vm = await StorageDaemonVm.StartAsync();
        await using (VmSnapshotAccess uncommitted = await SetupAsync(vm, BitmapRequest.Use))
        {
            Assert.All(uncommitted.Exports, e => Assert.Equal(BitmapOutcome.New, e.Bitmap));
            await uncommitted.TeardownAsync(backupSucceeded: true);
            // Disposal without a settle: as after a cancelled or failed BackupCleanup.
        }

        Assert.Empty(await vm.BitmapsAsync(0));
        Assert.Empty(await vm.BitmapsAsync(1));
        await SnapshotAssert.LeftNothingAsync(vm);
    }

    [Fact(Timeout = TestTimeouts.Test)]
    public async Task Setup_refuses_a_guest_whose_graph_holds_another_backups_nodes()
    {
        await using StorageDaemonVm vm = await StorageDaemonVm.StartAsync();
        await vm.TakeFullBackupAsync(output);
        await vm.GuestWriteAllAsync(s_before);
        await using VmSnapshotAccess first = await SetupAsync(vm, BitmapRequest.Use);
        string[] nodes = await vm.NodeNamesAsync();

        var refused = await Assert.ThrowsAsync<SnapshotAccessException>(() => SetupAsync(vm, BitmapRequest.Use));
        Assert.Contains("another backup's nodes", refused.Message, StringComparison.Ordinal);
        // The first backup is untouched: same graph, its bitmap still frozen and exported, its data readable.
        Assert.Equal(nodes, await vm.NodeNamesAsync());
        foreach (SnapshotExport export in first.Exports)
        {
            Assert.Null(await vm.Nbd.ReadErrorAsync(NbdTool.Uri(export), 20 * MiB, MiB));
        }

        await vm.GuestWriteAllAsync(s_during);
        await first.TeardownAsync(backupSucceeded: true);
        await first.SettleBitmapsAsync(providerCommitted: true);
        await AssertNextBackupDirtyAsync(vm, s_during);
        await SnapshotAssert.LeftNothingAsync(vm);
    }

    private Task<VmSnapshotAccess> SetupAsync(StorageDaemonVm vm, BitmapRequest request)
        => VmSnapshotAccess.SetupAsync(vm.Qmp, StorageDaemonVm.Disks(request), vm.Options(output));

    /// <summary>The next backup with Use reuses the bitmap, and it shows exactly <paramref name="writes"/> as dirty.</summary>
    private async Task AssertNextBackupDirtyAsync(StorageDaemonVm vm, (long Offset, long Length)[] writes)
    {
        await using VmSnapshotAccess next = await SetupAsync(vm, BitmapRequest.Use);
        for (int disk = 0; disk < StorageDaemonVm.DiskCount; disk++)
        {
            SnapshotExport export = next.Exports[disk];
            Assert.Equal(BitmapOutcome.Reuse, export.Bitmap);
            long granularity = (await vm.BitmapsAsync(disk))[StorageDaemonVm.BitmapName(disk)].Granularity;
            Assert.Equal(SnapshotAssert.Aligned(granularity, writes), await vm.Nbd.DirtyExtentsAsync(NbdTool.Uri(export), export.BitmapContext!));
        }

        await next.TeardownAsync(backupSucceeded: true);
        await next.SettleBitmapsAsync(providerCommitted: true);
    }
}
