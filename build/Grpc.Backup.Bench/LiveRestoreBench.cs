using System.Diagnostics;
using Grpc.Backup.Host;
using Grpc.Backup.Nbd;
using Grpc.Backup.Orchestrator;
using Grpc.Backup.Orchestrator.Inventory;
using Grpc.Backup.Protocol;
using Microsoft.Extensions.Logging.Abstractions;

namespace Grpc.Backup.Bench;

/// <summary>
/// Live restore against a full restore of the same backup: <c>vm-live-restore-first-boot</c> is the time from the command
/// to the first MiB of every disk read through the VM (qemu-storage-daemon on the disks' blockdev trees, its own NBD
/// export: what a booting guest would read), <c>vm-live-restore-total</c> the time until every disk is independent of
/// the provider; both beside the full restore's time (after which a guest could only then start).
/// </summary>
internal static class LiveRestoreBench
{
    public static async Task<IReadOnlyList<BenchResult>> RunAsync(string work, string providerEndpoint, string guestDir)
    {
        VmGuest guest = GuestInventory.Load(Path.Combine(guestDir, "inventory")).Vms["100"];
        long size = guest.Disks.Sum(d => new FileInfo(d.ImagePath).Length);
        await using var connection = await ProviderConnection.ConnectAsync(ProviderEndpoint.Parse(providerEndpoint));
        var (fleece, runtime) = BenchDirectories.Create(work);
        string archive = (await VmBench.BackupAsync(connection, guest, fleece, runtime, storage: "live")).ArchiveName;

        var plainStart = Stopwatch.GetTimestamp();
        await new VmRestoreRunner(connection, NullLogger<VmRestoreRunner>.Instance).RestoreAsync(archive,
            new VmRestoreOptions { TargetDirectory = Path.Combine(work, "plain") }, CancellationToken.None);
        double plain = Stopwatch.GetElapsedTime(plainStart).TotalSeconds;
        Directory.Delete(Path.Combine(work, "plain"), recursive: true);

        string qmp = Path.Combine(runtime, "vm-qmp.sock");
        string nbd = Path.Combine(runtime, "vm-nbd.sock");
        Process? vm = null;
        try
        {
            var start = Stopwatch.GetTimestamp();
            await using LiveRestoreSession session = await new LiveRestoreRunner(connection, NullLogger<LiveRestoreRunner>.Instance).StartAsync(archive,
                new LiveRestoreOptions { TargetDirectory = Path.Combine(work, "live") },
                async (disks, _) =>
                {
                    vm = Process.Start(new ProcessStartInfo("qemu-storage-daemon",
                    [
                        .. disks.Disks.SelectMany(d => new[] { "--blockdev", d.BlockdevJson }),
                        "--chardev", $"socket,id=m,path={qmp},server=on,wait=off", "--monitor", "chardev=m",
                        "--nbd-server", $"addr.type=unix,addr.path={nbd}",
                        .. disks.Disks.SelectMany(d => new[] { "--export", $"type=nbd,id=e-{d.NodeName},node-name={d.NodeName},name={d.NodeName}" }),
                    ]))!;
                    while (!File.Exists(qmp) || !File.Exists(nbd))
                    {
                        await Task.Delay(5, CancellationToken.None);
                    }
                    return qmp;
                }, CancellationToken.None);
            byte[] buffer = new byte[1 << 20];
            foreach (LiveRestoreDisk disk in session.Disks)
            {
                await using var reader = await NbdClient.ConnectAsync(nbd, disk.NodeName);
                await reader.ReadAsync(0, buffer);
            }
            double firstRead = Stopwatch.GetElapsedTime(start).TotalSeconds;
            await session.Completion;
            double total = Stopwatch.GetElapsedTime(start).TotalSeconds;
            return
            [
                new BenchResult("vm-live-restore-first-boot", firstRead, "full restore (ours), before which no guest can start", plain,
                    $"{guest.Disks.Count} disk(s), {size >> 20} MiB: command to the first MiB of each disk read through the VM (qemu-storage-daemon)"),
                new BenchResult("vm-live-restore-total", total, "full restore (ours)", plain,
                    $"{size >> 20} MiB: command to every disk independent of the provider (block-stream, unlimited)"),
            ];
        }
        finally
        {
            if (vm is not null)
            {
                vm.Kill();
                await vm.WaitForExitAsync();
                vm.Dispose();
            }
        }
    }
}
