using Xunit.Abstractions;
using Grpc.Backup.Qemu.Tests.Infrastructure;

namespace Grpc.Backup.Qemu.Tests.SnapshotAccess;

/// <summary>The exports show each disk as it was at the instant, however busy the guest is afterwards.</summary>
public sealed class PointInTimeTests(ITestOutputHelper output)
{
    [Fact(Timeout = TestTimeouts.Test)]
    public async Task Exports_keep_the_instant_while_the_guest_keeps_writing()
    {
        await using StorageDaemonVm vm = await StorageDaemonVm.StartAsync();
        string[] reference = [await vm.GuestSha256Async(0), await vm.GuestSha256Async(1)];

        await using VmSnapshotAccess access = await VmSnapshotAccess.SetupAsync(vm.Qmp, StorageDaemonVm.Disks(BitmapRequest.Use), vm.Options(output));
        Assert.Equal(["disk0", "disk1"], access.Exports.Select(e => e.ExportName));
        Assert.All(access.Exports, e =>
        {
            Assert.Equal((ulong)StorageDaemonVm.DiskSize, e.SizeBytes);
            Assert.Equal(BitmapOutcome.New, e.Bitmap); // nothing to reuse on fresh disks
            Assert.Null(e.BitmapContext);
            Assert.Equal(vm.SnapshotSocket, e.NbdSocketPath);
        });

        await using GuestWriter writer0 = GuestWriter.Start(vm, 0);
        await using GuestWriter writer1 = GuestWriter.Start(vm, 1);
        await Task.WhenAll(writer0.WaitForAsync(50), writer1.WaitForAsync(50));
        string[] during = await Task.WhenAll(access.Exports.Select(e => vm.Nbd.Sha256Async(NbdTool.Uri(e))));
        int written0 = await writer0.StopAsync();
        int written1 = await writer1.StopAsync();
        output.WriteLine($"guest wrote {written0} and {written1} blocks of 64 KiB while the snapshot was read");

        Assert.Equal(reference, during);
        Assert.NotEqual(reference[0], await vm.GuestSha256Async(0));
        Assert.NotEqual(reference[1], await vm.GuestSha256Async(1));
        Assert.Equal(reference, await Task.WhenAll(access.Exports.Select(e => vm.Nbd.Sha256Async(NbdTool.Uri(e)))));

        await access.TeardownAsync(backupSucceeded: true);
        await access.SettleBitmapsAsync(providerCommitted: true);
        Assert.Empty(access.Exports);
        await SnapshotAssert.LeftNothingAsync(vm);
    }

    [Fact(Timeout = TestTimeouts.Test)]
    public async Task Quiesce_is_entered_once_around_the_switch_of_every_disk()
    {
        await using StorageDaemonVm vm = await StorageDaemonVm.StartAsync();
        await vm.TakeFullBackupAsync(output);
        var events = new List<string>();
        SnapshotAccessOptions options = vm.Options(output);
        options = new SnapshotAccessOptions
        {
            FleecingDirectory = options.FleecingDirectory,
            NbdSocketPath = options.NbdSocketPath,
            StorageId = options.StorageId,
            Log = options.Log,
            Quiesce = async ct =>
            {
                events.Add($"enter: {await DescribeAsync(vm)}");
                return new QuiesceProbe(async () => events.Add($"exit: {await DescribeAsync(vm)}"));
            },
        };

        await using VmSnapshotAccess access = await VmSnapshotAccess.SetupAsync(vm.Qmp, StorageDaemonVm.Disks(BitmapRequest.Use), options);

        // Before: no copy-before-write, bitmaps recording. After: both disks switched, both bitmaps frozen.
        Assert.Equal(["enter: cbw=0 recording=2", "exit: cbw=2 recording=0"], events);
        await access.TeardownAsync(backupSucceeded: true);
        await access.SettleBitmapsAsync(providerCommitted: true);
        Assert.Equal(2, events.Count);
    }

    private static async Task<string> DescribeAsync(StorageDaemonVm vm)
    {
        int cbw = (await vm.NodeNamesAsync()).Count(n => n.Contains("-cbw", StringComparison.Ordinal));
        int recording = 0;
        for (int disk = 0; disk < StorageDaemonVm.DiskCount; disk++)
        {
            recording += (await vm.BitmapsAsync(disk))[StorageDaemonVm.BitmapName(disk)].Recording ? 1 : 0;
        }

        return $"cbw={cbw} recording={recording}";
    }
}
