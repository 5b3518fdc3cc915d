using System.Globalization;
using Grpc.Backup.Qemu.Tests.Infrastructure;
using Xunit.Abstractions;

namespace Grpc.Backup.Qemu.Tests.SnapshotAccess;

/// <summary>The export is writable only so that the provider's TRIM gives fleecing space back.</summary>
public sealed class TrimTests(ITestOutputHelper output)
{
    private const long MiB = 1 << 20;

    [Fact(Timeout = TestTimeouts.Test)]
    public async Task Trim_frees_the_copied_data_and_writes_are_refused()
    {
        await using StorageDaemonVm vm = await StorageDaemonVm.StartAsync();
        await using VmSnapshotAccess access = await VmSnapshotAccess.SetupAsync(vm.Qmp, StorageDaemonVm.Disks(BitmapRequest.None), vm.Options(output));

        for (int disk = 0; disk < StorageDaemonVm.DiskCount; disk++)
        {
            string uri = NbdTool.Uri(access.Exports[disk]);
            string fleece = Assert.Single(Directory.GetFiles(vm.FleecingDirectory, $"*-{disk}.raw"));
            Assert.Equal(StorageDaemonVm.DiskSize, new FileInfo(fleece).Length);
            long empty = await AllocatedBytesAsync(fleece);

            // The guest overwrites 4 MiB: copy-before-write first saves the old data to the fleecing image.
            for (long offset = 8 * MiB; offset < 12 * MiB; offset += MiB)
            {
                await vm.GuestWriteAsync(disk, offset, (int)MiB, 0x11);
            }

            long copied = await AllocatedBytesAsync(fleece);
            output.WriteLine($"disk{disk}: fleecing image {empty} -> {copied} bytes allocated");
            Assert.True(copied - empty >= 4 * MiB, $"{copied - empty} bytes copied");

            Assert.Null(await vm.Nbd.ReadErrorAsync(uri, 8 * MiB, 4 * MiB));
            Assert.Null(await vm.Nbd.TrimErrorAsync(uri, 8 * MiB, 4 * MiB));
            long trimmed = await AllocatedBytesAsync(fleece);
            output.WriteLine($"disk{disk}: after TRIM {trimmed} bytes allocated");
            Assert.True(trimmed <= empty, $"{trimmed} bytes still allocated");
            // A trimmed range is given up for good: reading it fails, and later guest writes there cost nothing.
            Assert.Equal("EINVAL", await vm.Nbd.ReadErrorAsync(uri, 8 * MiB, 64 * 1024));
            await vm.GuestWriteAsync(disk, 9 * MiB, (int)MiB, 0x22);
            Assert.Equal(trimmed, await AllocatedBytesAsync(fleece));

            Assert.NotNull(await vm.Nbd.WriteErrorAsync(uri, 0, 4096));
        }

        await access.TeardownAsync(backupSucceeded: true);
        await access.SettleBitmapsAsync(providerCommitted: true);
        await SnapshotAssert.LeftNothingAsync(vm);
    }

    private static async Task<long> AllocatedBytesAsync(string path)
    {
        string blocks = await QemuProcess.RunToolAsync("stat", "--format=%b", path);
        return long.Parse(blocks.Trim(), CultureInfo.InvariantCulture) * 512;
    }
}
