using Grpc.Backup.Qemu.Tests.Infrastructure;
using Xunit.Abstractions;

namespace Grpc.Backup.Qemu.Tests.SnapshotAccess;

/// <summary>The job's bandwidth limit is enforced by QEMU itself (a throttle group behind the exports), whatever the reader does.</summary>
public sealed class BandwidthLimitTests(ITestOutputHelper output)
{
    [Fact(Timeout = TestTimeouts.Test)]
    public async Task A_reader_that_ignores_the_limit_is_held_to_it()
    {
        const ulong limit = 8L << 20;
        await using StorageDaemonVm vm = await StorageDaemonVm.StartAsync();
        string reference = await vm.GuestSha256Async(0);
        SnapshotAccessOptions defaults = vm.Options(output);
        var options = new SnapshotAccessOptions
        {
            FleecingDirectory = defaults.FleecingDirectory,
            NbdSocketPath = defaults.NbdSocketPath,
            StorageId = defaults.StorageId,
            Quiesce = defaults.Quiesce,
            Log = defaults.Log,
            BandwidthLimit = limit,
        };
        await using VmSnapshotAccess access = await VmSnapshotAccess.SetupAsync(vm.Qmp, StorageDaemonVm.Disks(BitmapRequest.None), options);

        // The reader is libnbd reading back to back in the directory provider's request size: nothing in it knows of a
        // limit. (QEMU admits any single request when its bucket is empty, so the first request is free: with 256 KiB
        // requests that is under 1% of the disk.)
        var (read, seconds) = await vm.Nbd.TimedSha256Async(NbdTool.Uri(access.Exports[0]), 256 * 1024);
        double rate = StorageDaemonVm.DiskSize / seconds;
        output.WriteLine($"read {StorageDaemonVm.DiskSize} bytes in {seconds:F2} s: {rate / (1 << 20):F2} MiB/s against a limit of {limit >> 20} MiB/s");

        Assert.Equal(reference, read);
        // Only the upper bound is the limit's: a starved machine reads slower than any limit, and that is not a failure.
        Assert.True(rate <= limit * 1.1, $"read at {rate / (1 << 20):F2} MiB/s, above the limit of {limit >> 20} MiB/s");
        await access.TeardownAsync(backupSucceeded: true);
        await access.SettleBitmapsAsync(providerCommitted: true);
        // The throttle node and its group go with the rest.
        await SnapshotAssert.LeftNothingAsync(vm);
        Assert.DoesNotContain((await vm.Qmp.ExecuteAsync("qom-list", new System.Text.Json.Nodes.JsonObject { ["path"] = "/objects" }))!.AsArray()
            .Select(o => (string)o!["name"]!), name => name.StartsWith("gb", StringComparison.Ordinal));
    }
}
