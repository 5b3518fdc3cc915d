using System.Security.Cryptography;
using Grpc.Backup.Qemu.Tests.Infrastructure;
using Xunit.Abstractions;

namespace Grpc.Backup.Qemu.Tests.SnapshotAccess;

/// <summary>
/// Without any quiesce the guest writes straight through setup and teardown. The bitmap order must still
/// lose nothing: a full backup patched with the next incremental's dirty extents equals that incremental's
/// whole snapshot.
/// </summary>
public sealed class UnquiescedTests(ITestOutputHelper output)
{
    [Fact(Timeout = TestTimeouts.Test)]
    public async Task Incrementals_chain_exactly_while_the_guest_never_stops()
    {
        await using StorageDaemonVm vm = await StorageDaemonVm.StartAsync();
        // Paced, so that between two backups only part of the disk changes and the bitmap has to be right.
        // Each writes the first half of its disk only, so the second half must read clean however long the copies
        // take on a loaded machine.
        await using GuestWriter writer0 = GuestWriter.Start(vm, 0, TimeSpan.FromMilliseconds(3), StorageDaemonVm.DiskSize / 2);
        await using GuestWriter writer1 = GuestWriter.Start(vm, 1, TimeSpan.FromMilliseconds(3), StorageDaemonVm.DiskSize / 2);
        string[] images = [Path.Combine(vm.Directory, "backup0.raw"), Path.Combine(vm.Directory, "backup1.raw")];

        await using (VmSnapshotAccess full = await SetupAsync(vm))
        {
            Assert.All(full.Exports, e => Assert.Equal(BitmapOutcome.New, e.Bitmap));
            await Task.WhenAll(full.Exports.Select((e, disk) => vm.Nbd.CopyAsync(NbdTool.Uri(e), images[disk])));
            await full.TeardownAsync(backupSucceeded: true);
            await full.SettleBitmapsAsync(providerCommitted: true);
        }
        // Both guests write after the full's instant, so each incremental has something to apply.
        await writer0.WaitForAsync(writer0.Written + 2);
        await writer1.WaitForAsync(writer1.Written + 2);

        await using (VmSnapshotAccess incremental = await SetupAsync(vm))
        {
            for (int disk = 0; disk < StorageDaemonVm.DiskCount; disk++)
            {
                SnapshotExport export = incremental.Exports[disk];
                Assert.Equal(BitmapOutcome.Reuse, export.Bitmap);
                string uri = NbdTool.Uri(export);
                long applied = await vm.Nbd.ApplyDirtyAsync(uri, export.BitmapContext!, images[disk]);
                output.WriteLine($"disk{disk}: {applied} of {StorageDaemonVm.DiskSize} bytes dirty");
                Assert.InRange(applied, 1, StorageDaemonVm.DiskSize / 2);
                // Without a quiesce copy-before-write protects every cluster, so the whole snapshot reads.
                Assert.Equal(await vm.Nbd.Sha256Async(uri), Convert.ToHexStringLower(SHA256.HashData(await File.ReadAllBytesAsync(images[disk]))));
            }

            await incremental.TeardownAsync(backupSucceeded: true);
            await incremental.SettleBitmapsAsync(providerCommitted: true);
        }

        Assert.True(await writer0.StopAsync() > 0);
        Assert.True(await writer1.StopAsync() > 0);
        await SnapshotAssert.LeftNothingAsync(vm);
    }

    private Task<VmSnapshotAccess> SetupAsync(StorageDaemonVm vm)
        => VmSnapshotAccess.SetupAsync(vm.Qmp, StorageDaemonVm.Disks(BitmapRequest.Use), vm.Options(output, quiesce: false));
}
