using System.Diagnostics;
using Grpc.Backup.Host;
using Grpc.Backup.Orchestrator.Inventory;
using Grpc.Backup.Protocol;

namespace Grpc.Backup.Bench;

/// <summary>
/// A four-disk guest's full backup against a backup of one of its disks alone, through the same provider in the same
/// run: with the volumes streamed at once, the four-disk backup window approaches the one-disk window instead of four
/// times it (the target is at most 1.3 times, ratio = one disk / four disks &gt;= 0.77).
/// </summary>
internal static class MultiDiskBench
{
    public static async Task<BenchResult> RunAsync(string work, string providerEndpoint, string guestDir)
    {
        VmGuest guest = GuestInventory.Load(Path.Combine(guestDir, "inventory")).Vms["100"];
        VmGuest oneDisk = guest with { Disks = [guest.Disks[0]] };
        await using var connection = await ProviderConnection.ConnectAsync(ProviderEndpoint.Parse(providerEndpoint));
        var (fleece, runtime) = BenchDirectories.Create(work);

        double one = double.MaxValue;
        double all = double.MaxValue;
        string phases = "";
        for (int round = 0; round < 2; round++)
        {
            var start = Stopwatch.GetTimestamp();
            await VmBench.BackupAsync(connection, oneDisk, fleece, runtime, storage: "multi-one" + round);
            one = Math.Min(one, Stopwatch.GetElapsedTime(start).TotalSeconds);

            start = Stopwatch.GetTimestamp();
            var result = await VmBench.BackupAsync(connection, guest, fleece, runtime, storage: "multi-all" + round);
            all = Math.Min(all, Stopwatch.GetElapsedTime(start).TotalSeconds);
            phases = result.Phases.ToString();
        }
        long size = new FileInfo(guest.Disks[0].ImagePath).Length;
        return new BenchResult("vm-multi-disk", all, "one of its disks alone (ours)", one,
            $"{guest.Disks.Count} x {size >> 20} MiB disks vs 1; phases: {phases}");
    }
}
