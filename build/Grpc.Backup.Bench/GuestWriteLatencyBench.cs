using System.Diagnostics;
using Grpc.Backup.Host;
using Grpc.Backup.Orchestrator.Inventory;
using Grpc.Backup.Protocol;

namespace Grpc.Backup.Bench;

/// <summary>
/// The guest's cost of fleecing: latency of 4 KiB write-through writes at random offsets of the guest's disk, first with
/// no backup (no copy-before-write), then while a full backup runs (each first write to a cluster waits for its copy
/// into the fleecing image). Reported as p50 and p99 in the notes; ours_s/peer_s are the p99s (peer = without CBW).
/// </summary>
internal static class GuestWriteLatencyBench
{
    private const int WriteSize = 4096;

    public static async Task<IReadOnlyList<BenchResult>> RunAsync(string work, string providerEndpoint, string guestDir)
    {
        VmGuest guest = GuestInventory.Load(Path.Combine(guestDir, "inventory")).Vms["100"];
        VmDisk disk = guest.Disks[0];
        string view = Path.Combine(guestDir, "guest", disk.DeviceName);
        long size = new FileInfo(disk.ImagePath).Length;
        var (fleece, runtime) = BenchDirectories.Create(work);

        List<double> without = await WriteAsync(view, size, count: 3000, until: null);
        await using var connection = await ProviderConnection.ConnectAsync(ProviderEndpoint.Parse(providerEndpoint));
        var backup = VmBench.BackupAsync(connection, guest, fleece, runtime, storage: "latency");
        // Give setup a head start so the writes land while copy-before-write is in the guest's path.
        await Task.Delay(1500);
        List<double> with = await WriteAsync(view, size, count: int.MaxValue, until: backup);
        await backup;
        (double p50Without, double p99Without) = Percentiles(without);
        (double p50With, double p99With) = Percentiles(with);
        return
        [
            new BenchResult("guest-write-4k-p50", p50With, "no backup running", p50Without,
                $"p50 of {with.Count} writes during a full backup (CBW) vs {without.Count} without"),
            new BenchResult("guest-write-4k-p99", p99With, "no backup running", p99Without,
                $"p99 of {with.Count} writes during a full backup (CBW) vs {without.Count} without"),
        ];
    }

    private static async Task<List<double>> WriteAsync(string view, long size, int count, Task? until)
    {
        var random = new Random(7);
        byte[] data = new byte[WriteSize];
        random.NextBytes(data);
        var latencies = new List<double>();
        using var handle = File.OpenHandle(view, FileMode.Open, FileAccess.Write, FileShare.ReadWrite, FileOptions.WriteThrough);
        while (latencies.Count < count && until?.IsCompleted != true)
        {
            long offset = random.NextInt64(size / WriteSize) * WriteSize;
            var start = Stopwatch.GetTimestamp();
            await RandomAccess.WriteAsync(handle, data, offset);
            latencies.Add(Stopwatch.GetElapsedTime(start).TotalSeconds);
        }
        return latencies;
    }

    private static (double P50, double P99) Percentiles(List<double> samples)
    {
        samples.Sort();
        return (samples[samples.Count / 2], samples[Math.Min(samples.Count - 1, samples.Count * 99 / 100)]);
    }
}
