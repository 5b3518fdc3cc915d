using Grpc.Backup.Qemu.Tests.Infrastructure;
using Xunit.Abstractions;

namespace Grpc.Backup.Qemu.Tests.SnapshotAccess;

/// <summary>qcow2 bitmaps outlive a clean stop of QEMU; after a crash they are distrusted and replaced.</summary>
public sealed class PersistenceTests(ITestOutputHelper output)
{
    private const long MiB = 1 << 20;

    [Fact(Timeout = TestTimeouts.Test)]
    public async Task Qcow2_bitmap_survives_a_clean_restart_and_is_replaced_after_a_crash()
    {
        await using StorageDaemonVm vm = await StorageDaemonVm.StartAsync();
        await vm.TakeFullBackupAsync(output);
        await vm.GuestWriteAsync(0, 6 * MiB, 4096, 3);

        await vm.QuitAsync();
        await vm.LaunchAsync();

        // The raw disk's bitmap lived in memory only.
        await using (VmSnapshotAccess afterQuit = await SetupAsync(vm))
        {
            Assert.Equal([BitmapOutcome.Reuse, BitmapOutcome.New], afterQuit.Exports.Select(e => e.Bitmap));
            SnapshotExport export = afterQuit.Exports[0];
            Assert.Equal([(6 * MiB, 64 * 1024L)], await vm.Nbd.DirtyExtentsAsync(NbdTool.Uri(export), export.BitmapContext!));
            await afterQuit.TeardownAsync(backupSucceeded: true);
            await afterQuit.SettleBitmapsAsync(providerCommitted: true);
        }

        await vm.GuestWriteAsync(0, 7 * MiB, 4096, 3);
        await vm.CrashAsync();
        await vm.LaunchAsync();
        var stale = (await vm.BitmapsAsync(0))[StorageDaemonVm.BitmapName(0)];
        Assert.True(stale.Inconsistent);
        Assert.False(stale.Recording);

        await using (VmSnapshotAccess afterCrash = await SetupAsync(vm))
        {
            Assert.Equal([BitmapOutcome.New, BitmapOutcome.New], afterCrash.Exports.Select(e => e.Bitmap));
            // The inconsistent one is gone; the new base is born at the commit.
            Assert.False((await vm.BitmapsAsync(0)).ContainsKey(StorageDaemonVm.BitmapName(0)));
            await afterCrash.TeardownAsync(backupSucceeded: true);
            await afterCrash.SettleBitmapsAsync(providerCommitted: true);
        }

        var fresh = (await vm.BitmapsAsync(0))[StorageDaemonVm.BitmapName(0)];
        Assert.False(fresh.Inconsistent);
        Assert.True(fresh.Recording);
        Assert.Equal(0, fresh.Count);

        await SnapshotAssert.LeftNothingAsync(vm);
    }

    private Task<VmSnapshotAccess> SetupAsync(StorageDaemonVm vm)
        => VmSnapshotAccess.SetupAsync(vm.Qmp, StorageDaemonVm.Disks(BitmapRequest.Use), vm.Options(output));
}
