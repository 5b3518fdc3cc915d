using Grpc.Backup.Nbd;
using Grpc.Backup.Qemu.Tests.Infrastructure;
using Xunit.Abstractions;

namespace Grpc.Backup.Qemu.Tests.SnapshotAccess;

/// <summary>
/// A hostile client reading an incremental's snapshot through the host's <see cref="NbdGuard"/>, as providers do: its
/// misaligned TRIMs (which abort QEMU 7.2 when sent straight to the export) and writes change nothing, QEMU stays up,
/// and the bitmap the next backup depends on is intact.
/// </summary>
public sealed class GuardTests(ITestOutputHelper output)
{
    private const long MiB = 1 << 20;

    private static readonly (long Offset, long Length)[] s_before = [(1 * MiB, 4096), (5 * MiB + 100, 200 * 1024), (20 * MiB, MiB)];

    [Fact(Timeout = TestTimeouts.Test)]
    public async Task Misaligned_trims_and_writes_through_the_guard_leave_qemu_the_data_and_the_bitmap_intact()
    {
        await using StorageDaemonVm vm = await StorageDaemonVm.StartAsync();
        await vm.TakeFullBackupAsync(output);
        await vm.GuestWriteAllAsync(s_before);

        await using (VmSnapshotAccess access = await VmSnapshotAccess.SetupAsync(vm.Qmp, StorageDaemonVm.Disks(BitmapRequest.Use), vm.Options(output)))
        {
            SnapshotExport export = access.Exports[0];
            await using NbdGuard guard = await NbdGuard.StartAsync(new NbdGuardOptions
            {
                UpstreamSocketPath = export.NbdSocketPath,
                ExportName = export.ExportName,
                MetaContexts = [NbdMetaContexts.BaseAllocation, export.BitmapContext!],
                DiscardGranularity = export.DiscardGranularity,
            });
            string socket = Path.Combine(vm.FleecingDirectory, "guard.sock");
            guard.Listen(socket);
            string uri = NbdTool.Uri(socket, export.ExportName);
            long granularity = (await vm.BitmapsAsync(0))[StorageDaemonVm.BitmapName(0)].Granularity;

            // The dirty extents come through the guard (in its 64 KiB units) as QEMU has them.
            Assert.Equal(SnapshotAssert.Aligned(Math.Max(granularity, 64 * 1024), s_before), await vm.Nbd.DirtyExtentsAsync(uri, export.BitmapContext!));

            // Inside the dirty areas, none of them on a cluster boundary: each reaches QEMU as nothing at all.
            Assert.Null(await vm.Nbd.TrimErrorAsync(uri, (1 * MiB) + 4096, 4096));
            Assert.Null(await vm.Nbd.TrimErrorAsync(uri, (20 * MiB) + 512, 60 * 1024));
            Assert.Equal("EPERM", await vm.Nbd.WriteErrorAsync(uri, 20 * MiB, 4096));
            await vm.Qmp.ExecuteAsync("query-version"); // QEMU is up

            // Nothing was discarded: the whole dirty megabyte still reads through the guard and straight from QEMU.
            Assert.Null(await vm.Nbd.ReadErrorAsync(uri, 20 * MiB, MiB));
            Assert.Null(await vm.Nbd.ReadErrorAsync(NbdTool.Uri(export), 20 * MiB, MiB));

            await access.TeardownAsync(backupSucceeded: false);
        }

        // The failed backup gave its writes back: the next incremental sees every one of them.
        await using VmSnapshotAccess next = await VmSnapshotAccess.SetupAsync(vm.Qmp, StorageDaemonVm.Disks(BitmapRequest.Use), vm.Options(output));
        long nextGranularity = (await vm.BitmapsAsync(0))[StorageDaemonVm.BitmapName(0)].Granularity;
        Assert.Equal(SnapshotAssert.Aligned(nextGranularity, s_before),
            await vm.Nbd.DirtyExtentsAsync(NbdTool.Uri(next.Exports[0]), next.Exports[0].BitmapContext!));
        await next.TeardownAsync(backupSucceeded: true);
    }
}
