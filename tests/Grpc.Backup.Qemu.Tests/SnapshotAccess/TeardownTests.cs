using Grpc.Backup.Qemu.Tests.Infrastructure;
using Xunit.Abstractions;

namespace Grpc.Backup.Qemu.Tests.SnapshotAccess;

/// <summary>Whatever happens, teardown leaves the VM as it was, with bitmaps that lost no write.</summary>
public sealed class TeardownTests(ITestOutputHelper output)
{
    private const long MiB = 1 << 20;

    [Fact(Timeout = TestTimeouts.Test)]
    public async Task Failure_midway_through_setup_undoes_everything_and_keeps_the_bitmaps()
    {
        await using StorageDaemonVm vm = await StorageDaemonVm.StartAsync();
        await vm.TakeFullBackupAsync(output);
        await vm.GuestWriteAllAsync((3 * MiB, 4096));

        // Disk 0 is fully switched (bitmap frozen, copy-before-write in place) when disk 1's switch fails.
        SnapshotDisk[] disks = [StorageDaemonVm.Disk(0, BitmapRequest.Use), StorageDaemonVm.Disk(1, BitmapRequest.Use) with { ThrottleGroup = "no-such-group" }];
        var ex = await Assert.ThrowsAsync<SnapshotAccessException>(() => VmSnapshotAccess.SetupAsync(vm.Qmp, disks, vm.Options(output)));

        Assert.Equal("disk1", ex.DeviceName);
        Assert.Equal("switch filter to copy-before-write", ex.Step);
        Assert.Contains("no-such-group", ex.Message, StringComparison.Ordinal);
        Assert.IsType<QmpCommandException>(ex.InnerException);
        await SnapshotAssert.LeftNothingAsync(vm, probeGuestWrites: false);
        await AssertNextBackupReusesAsync(vm, 3 * MiB);
        await SnapshotAssert.LeftNothingAsync(vm);
    }

    [Fact(Timeout = TestTimeouts.Test)]
    public async Task Failure_creating_a_fleecing_image_undoes_everything()
    {
        await using StorageDaemonVm vm = await StorageDaemonVm.StartAsync();

        var ex = await Assert.ThrowsAsync<SnapshotAccessException>(() => VmSnapshotAccess.SetupAsync(
            vm.Qmp, StorageDaemonVm.Disks(BitmapRequest.Use), vm.Options(output, fleecingDirectory: Path.Combine(vm.Directory, "missing"))));

        Assert.Equal("disk0", ex.DeviceName);
        Assert.Equal("create fleecing image", ex.Step);
        Assert.IsType<DirectoryNotFoundException>(ex.InnerException);
        await SnapshotAssert.LeftNothingAsync(vm);
    }

    /// <summary>
    /// A cancellation that lands while a graph command is in flight must not lose track of it: QEMU carries out a
    /// command it received whatever the client does, so setup's graph commands are never abandoned half-way (CI: a
    /// backup cancelled during setup left its copy-before-write and fleecing nodes, and every later backup of the
    /// guest was refused). The cancellation sweeps across setup; whatever step it hits, nothing is left.
    /// </summary>
    [Fact(Timeout = TestTimeouts.Test * 4)]
    public async Task A_cancellation_anywhere_in_setup_leaves_nothing_behind()
    {
        await using StorageDaemonVm vm = await StorageDaemonVm.StartAsync();
        await vm.TakeFullBackupAsync(output);
        long setupTicks;
        {
            long started = System.Diagnostics.Stopwatch.GetTimestamp();
            VmSnapshotAccess access = await VmSnapshotAccess.SetupAsync(vm.Qmp, StorageDaemonVm.Disks(BitmapRequest.Use), vm.Options(output));
            setupTicks = System.Diagnostics.Stopwatch.GetElapsedTime(started).Ticks;
            await access.TeardownAsync(backupSucceeded: false);
            await access.SettleBitmapsAsync(providerCommitted: false);
            await access.DisposeAsync();
        }
        int cancelled = 0;
        for (int i = 0; i < 16; i++)
        {
            // Spread over one measured setup's length; which step each lands in depends on the machine, the invariant not.
            using var cts = new CancellationTokenSource(TimeSpan.FromTicks(setupTicks * i / 16));
            try
            {
                VmSnapshotAccess access = await VmSnapshotAccess.SetupAsync(vm.Qmp, StorageDaemonVm.Disks(BitmapRequest.Use), vm.Options(output), cts.Token);
                await access.TeardownAsync(backupSucceeded: false);
                await access.SettleBitmapsAsync(providerCommitted: false);
                await access.DisposeAsync();
            }
            catch (Exception e) when (e is OperationCanceledException or SnapshotAccessException)
            {
                cancelled++;
            }
            await SnapshotAssert.LeftNothingAsync(vm, probeGuestWrites: false);
        }
        output.WriteLine($"{cancelled} of 16 setups were cancelled part-way");
        // The bitmaps survived every cancelled attempt: the next backup is still an incremental.
        await using VmSnapshotAccess next = await VmSnapshotAccess.SetupAsync(vm.Qmp, StorageDaemonVm.Disks(BitmapRequest.Use), vm.Options(output));
        Assert.All(next.Exports, export => Assert.Equal(BitmapOutcome.Reuse, export.Bitmap));
        await next.TeardownAsync(backupSucceeded: false);
        await next.SettleBitmapsAsync(providerCommitted: false);
    }

    [Fact(Timeout = TestTimeouts.Test)]
    public async Task Unknown_node_fails_before_anything_changes()
    {
        await using StorageDaemonVm vm = await StorageDaemonVm.StartAsync();
        SnapshotDisk[] disks = [StorageDaemonVm.Disk(0, BitmapRequest.Use), StorageDaemonVm.Disk(1, BitmapRequest.Use) with { FormatNode = "no-such-node" }];

        var ex = await Assert.ThrowsAsync<SnapshotAccessException>(() => VmSnapshotAccess.SetupAsync(vm.Qmp, disks, vm.Options(output)));

        Assert.Equal("disk1", ex.DeviceName);
        Assert.Contains("no-such-node", ex.Message, StringComparison.Ordinal);
        await SnapshotAssert.LeftNothingAsync(vm);
    }

    [Fact(Timeout = TestTimeouts.Test)]
    public async Task Connected_reader_is_dropped_and_teardown_is_idempotent()
    {
        await using StorageDaemonVm vm = await StorageDaemonVm.StartAsync();
        VmSnapshotAccess access = await VmSnapshotAccess.SetupAsync(vm.Qmp, StorageDaemonVm.Disks(BitmapRequest.Use), vm.Options(output));
        using System.Diagnostics.Process reader0 = await vm.Nbd.HoldAsync(NbdTool.Uri(access.Exports[0]));
        using System.Diagnostics.Process reader1 = await vm.Nbd.HoldAsync(NbdTool.Uri(access.Exports[1]));
        try
        {
            Task first = access.TeardownAsync(backupSucceeded: true);
            Assert.Same(first, access.TeardownAsync(backupSucceeded: false));
            await first;
            Task settled = access.SettleBitmapsAsync(providerCommitted: true);
            Assert.Same(settled, access.SettleBitmapsAsync(providerCommitted: false));
            await settled;
            await access.DisposeAsync();
            await SnapshotAssert.LeftNothingAsync(vm);
            // Succeeded although forced, and committed: the bitmaps moved on.
            Assert.True((await vm.BitmapsAsync(0))[StorageDaemonVm.BitmapName(0)].Recording);
        }
        finally
        {
            reader0.Kill(entireProcessTree: true);
            reader1.Kill(entireProcessTree: true);
        }
    }

    [Fact(Timeout = TestTimeouts.Test)]
    public async Task Dispose_without_teardown_counts_as_a_failed_backup()
    {
        await using StorageDaemonVm vm = await StorageDaemonVm.StartAsync();
        await vm.TakeFullBackupAsync(output);
        await vm.GuestWriteAllAsync((3 * MiB, 4096));

        await using (VmSnapshotAccess access = await VmSnapshotAccess.SetupAsync(vm.Qmp, StorageDaemonVm.Disks(BitmapRequest.Use), vm.Options(output)))
        {
            Assert.All(access.Exports, e => Assert.Equal(BitmapOutcome.Reuse, e.Bitmap));
        }

        await SnapshotAssert.LeftNothingAsync(vm, probeGuestWrites: false);
        await AssertNextBackupReusesAsync(vm, 3 * MiB);
        await SnapshotAssert.LeftNothingAsync(vm);
    }

    [Fact(Timeout = TestTimeouts.Test)]
    public async Task QEMU_dying_mid_backup_still_removes_the_fleecing_images()
    {
        await using StorageDaemonVm vm = await StorageDaemonVm.StartAsync();
        VmSnapshotAccess access = await VmSnapshotAccess.SetupAsync(vm.Qmp, StorageDaemonVm.Disks(BitmapRequest.Use), vm.Options(output));
        Assert.Equal(2, Directory.GetFiles(vm.FleecingDirectory).Length);

        await vm.CrashAsync();

        var ex = await Assert.ThrowsAsync<SnapshotAccessException>(() => access.TeardownAsync(backupSucceeded: true));
        Assert.Equal("teardown", ex.Step);
        await access.DisposeAsync(); // does not throw
        Assert.Empty(Directory.GetFiles(vm.FleecingDirectory));
        await vm.LaunchAsync();
        await SnapshotAssert.LeftNothingAsync(vm);
    }

    [Fact(Timeout = TestTimeouts.Test)]
    public async Task Background_bitmap_left_by_an_interrupted_run_is_folded_back()
    {
        await using StorageDaemonVm vm = await StorageDaemonVm.StartAsync();
        await vm.TakeFullBackupAsync(output);
        await vm.GuestWriteAllAsync((3 * MiB, 4096));
        // What a run that died between its graph teardown and its bitmap transaction leaves: the stable
        // bitmap frozen, the background bitmap holding the writes made since.
        for (int disk = 0; disk < StorageDaemonVm.DiskCount; disk++)
        {
            string bitmap = StorageDaemonVm.BitmapName(disk);
            await vm.Qmp.ExecuteAsync("block-dirty-bitmap-add", new() { ["node"] = $"fmt{disk}", ["name"] = $"{bitmap}-bg" });
            await vm.Qmp.ExecuteAsync("block-dirty-bitmap-disable", new() { ["node"] = $"fmt{disk}", ["name"] = bitmap });
        }

        await vm.GuestWriteAllAsync((5 * MiB, 4096));

        await using VmSnapshotAccess access = await VmSnapshotAccess.SetupAsync(vm.Qmp, StorageDaemonVm.Disks(BitmapRequest.Use), vm.Options(output));
        foreach (SnapshotExport export in access.Exports)
        {
            Assert.Equal(BitmapOutcome.Reuse, export.Bitmap);
            Assert.Equal([(3 * MiB, 64 * 1024L), (5 * MiB, 64 * 1024L)], await vm.Nbd.DirtyExtentsAsync(NbdTool.Uri(export), export.BitmapContext!));
        }

        await access.TeardownAsync(backupSucceeded: true);
        await access.SettleBitmapsAsync(providerCommitted: true);
        await SnapshotAssert.LeftNothingAsync(vm);
    }

    /// <summary>The write at <paramref name="offset"/> made before the failed backup is still in each bitmap.</summary>
    private async Task AssertNextBackupReusesAsync(StorageDaemonVm vm, long offset)
    {
        await using VmSnapshotAccess next = await VmSnapshotAccess.SetupAsync(vm.Qmp, StorageDaemonVm.Disks(BitmapRequest.Use), vm.Options(output));
        foreach (SnapshotExport export in next.Exports)
        {
            Assert.Equal(BitmapOutcome.Reuse, export.Bitmap);
            Assert.Equal([(offset, 64 * 1024L)], await vm.Nbd.DirtyExtentsAsync(NbdTool.Uri(export), export.BitmapContext!));
        }

        await next.TeardownAsync(backupSucceeded: true);
        await next.SettleBitmapsAsync(providerCommitted: true);
    }
}
