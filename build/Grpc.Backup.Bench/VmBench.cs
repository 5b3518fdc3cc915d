using System.Diagnostics;
using System.Globalization;
using Google.Protobuf.WellKnownTypes;
using Grpc.Backup.Host;
using Grpc.Backup.Nbd;
using Grpc.Backup.Orchestrator;
using Grpc.Backup.Orchestrator.Inventory;
using Grpc.Backup.Protocol;
using Grpc.Backup.Protocol.V1;
using Grpc.Backup.Qemu;
using Microsoft.Extensions.Logging.Abstractions;

namespace Grpc.Backup.Bench;

/// <summary>
/// VM measures, each beside its peer in the same run on the same filesystem: a full backup through the nbd mechanism
/// to the directory provider against nbdcopy from the same snapshot export; an incremental with 1% dirty; a restore
/// against qemu-img convert of a local raw file.
/// </summary>
internal static class VmBench
{
    public static async Task<IReadOnlyList<BenchResult>> RunAsync(string work, string providerEndpoint, string guestDir, string label,
        bool withIncrementalAndRestore)
    {
        var results = new List<BenchResult>();
        VmGuest guest = GuestInventory.Load(Path.Combine(guestDir, "inventory")).Vms["100"];
        VmDisk disk = guest.Disks[0];
        long size = new FileInfo(disk.ImagePath).Length;
        await using var connection = await ProviderConnection.ConnectAsync(ProviderEndpoint.Parse(providerEndpoint));
        var (fleece, runtime) = BenchDirectories.Create(work);

        // Peer: nbdcopy from the same kind of snapshot export (set up the same way) into a file on the same filesystem.
        double peerFull = double.MaxValue;
        double guardedFull = double.MaxValue;
        for (int round = 0; round < 2; round++)
        {
            await using var qmp = await QmpClient.ConnectAsync(guest.QmpSocket);
            var access = await VmSnapshotAccess.SetupAsync(qmp,
                [new SnapshotDisk(disk.DeviceName, disk.FormatNode, disk.FilterNode, disk.ThrottleGroup, false, BitmapRequest.None)],
                new SnapshotAccessOptions { FleecingDirectory = fleece, NbdSocketPath = Path.Combine(runtime, "peer.sock"), StorageId = "peer" });
            string output = Path.Combine(work, "nbdcopy.raw");
            try
            {
                SnapshotExport export = access.Exports[0];
                var start = Stopwatch.GetTimestamp();
                await Tool.RunAsync("nbdcopy", $"nbd+unix:///{export.ExportName}?socket={export.NbdSocketPath}", output);
                await Tool.RunAsync("sync", "-f", output);
                peerFull = Math.Min(peerFull, Stopwatch.GetElapsedTime(start).TotalSeconds);
                File.Delete(output);

                // The same copy through the host's NBD guard, which every provider now reads through.
                await using (NbdGuard guard = await NbdGuard.StartAsync(new NbdGuardOptions
                {
                    UpstreamSocketPath = export.NbdSocketPath,
                    ExportName = export.ExportName,
                    DiscardGranularity = export.DiscardGranularity,
                }))
                {
                    string guardSocket = Path.Combine(runtime, "guard.sock");
                    guard.Listen(guardSocket);
                    start = Stopwatch.GetTimestamp();
                    await Tool.RunAsync("nbdcopy", $"nbd+unix:///{export.ExportName}?socket={guardSocket}", output);
                    await Tool.RunAsync("sync", "-f", output);
                    guardedFull = Math.Min(guardedFull, Stopwatch.GetElapsedTime(start).TotalSeconds);
                }
            }
            finally
            {
                await access.TeardownAsync(false);
                File.Delete(output);
            }
        }

        results.Add(new BenchResult(label + "-guard", guardedFull, "nbdcopy direct", peerFull,
            $"{size >> 20} MiB: nbdcopy through NbdGuard vs straight from QEMU's export"));

        // Ours: the whole backup of the guest (handshake excluded): setup, BackupVm, teardown, durable on disk.
        double oursFull = double.MaxValue;
        VmBackupResult? full = null;
        long bytesRead = 0;
        for (int round = 0; round < 2; round++)
        {
            var start = Stopwatch.GetTimestamp();
            full = await BackupAsync(connection, guest, fleece, runtime, storage: "bench" + round);
            oursFull = Math.Min(oursFull, Stopwatch.GetElapsedTime(start).TotalSeconds);
            bytesRead = full.Volumes.Sum(v => (long)v.BytesRead);
        }
        // What the image holds (du): a sparse disk's backup must read about this, not its size.
        long allocated = long.Parse((await Grpc.Backup.Transport.ExternalProcess.RunAsync("du", ["-B1", disk.ImagePath], CancellationToken.None))
            .Split('\t')[0], CultureInfo.InvariantCulture);
        results.Add(new BenchResult(label, oursFull, "nbdcopy + sync", peerFull,
            $"{size >> 20} MiB disk, {allocated >> 20} MiB allocated, {bytesRead >> 20} MiB read by ours; phases: {full!.Phases}"));
        if (!withIncrementalAndRestore)
        {
            return results;
        }

        // Incremental with 1% of the disk dirtied through the guest's own view of it.
        long dirty = DirtyOnePercent(Path.Combine(guestDir, "guest", disk.DeviceName), size);
        var incrementalStart = Stopwatch.GetTimestamp();
        VmBackupResult incremental = await BackupAsync(connection, guest, fleece, runtime, storage: "bench1");
        double oursIncremental = Stopwatch.GetElapsedTime(incrementalStart).TotalSeconds;
        long incrementalRead = incremental.Volumes.Sum(v => (long)v.BytesRead);
        results.Add(new BenchResult("vm-incr-1pct", oursIncremental, "full backup (ours)", oursFull,
            $"dirty {dirty} B, read {incrementalRead} B ({(double)incrementalRead / dirty:0.000}x dirty), time {oursIncremental / oursFull:P1} of a full; phases: {incremental.Phases}"));

        // Restore of the full backup vs qemu-img convert of a local raw file to the same target filesystem.
        string restoreTarget = Path.Combine(work, "restore");
        var restoreStart = Stopwatch.GetTimestamp();
        VmRestoreResult restored = await new VmRestoreRunner(connection, NullLogger<VmRestoreRunner>.Instance).RestoreAsync(full!.ArchiveName,
            new VmRestoreOptions { TargetDirectory = restoreTarget }, CancellationToken.None);
        double oursRestore = Stopwatch.GetElapsedTime(restoreStart).TotalSeconds;

        // Verification as the service runs it (restore to scratch, then chunk digests) against sha256sum of the same restored data.
        string restoredDisk = restored.Disks[disk.DeviceName];
        var hashStart = Stopwatch.GetTimestamp();
        string hash = (await ChunkDigestList.OfFileAsync(restoredDisk, CancellationToken.None)).Value;
        double oursHash = Stopwatch.GetElapsedTime(hashStart).TotalSeconds;
        double peerHash = await Tool.TimeAsync("sha256sum", restoredDisk);
        string? recorded = full.Volumes.Single(v => v.DeviceName == disk.DeviceName).Digest?.Value;
        results.Add(new BenchResult("vm-verify-hash", oursHash, "sha256sum (restored raw)", peerHash,
            $"{size >> 20} MiB; {size / oursHash / (1 << 20):0} MiB/s; matches recorded digest: {hash == recorded}"));
        results.Add(new BenchResult("vm-verify", oursRestore + oursHash, "sha256sum (restored raw)", peerHash,
            $"restore {oursRestore:0.00} s + hash {oursHash:0.00} s; {size / (oursRestore + oursHash) / (1 << 20):0} MiB/s"));
        string converted = Path.Combine(work, "converted.raw");
        double peerRestore = await Tool.TimeAsync("qemu-img", "convert", "-U", "-f", "raw", "-O", "raw", disk.ImagePath, converted);
        Directory.Delete(restoreTarget, recursive: true);
        File.Delete(converted);
        results.Add(new BenchResult("vm-restore", oursRestore, "qemu-img convert (local raw)", peerRestore,
            $"{size >> 20} MiB disk; phases: {restored.Phases}"));
        return results;
    }

    internal static async Task<VmBackupResult> BackupAsync(ProviderConnection connection, VmGuest guest, string fleece, string runtime, string storage)
    {
        string jobId = Guid.NewGuid().ToString();
        await connection.Backup.JobInitAsync(new JobInitRequest { JobId = jobId, StartTime = Timestamp.FromDateTime(DateTime.UtcNow) });
        try
        {
            return await new VmBackupRunner(connection, NullLogger<VmBackupRunner>.Instance).BackupAsync(jobId, guest,
                new VmBackupOptions { FleecingDirectory = fleece, RuntimeDirectory = runtime, StorageId = storage }, CancellationToken.None);
        }
        finally
        {
            await connection.Backup.JobCleanupAsync(new JobCleanupRequest { JobId = jobId, Success = true });
        }
    }

    /// <summary>Writes random 64 KiB blocks to 1% of the disk; returns the dirty bytes (distinct blocks).</summary>
    private static long DirtyOnePercent(string guestView, long size)
    {
        const int block = 64 * 1024;
        long blocks = size / block;
        var chosen = new HashSet<long>();
        var random = new Random(42);
        while (chosen.Count < blocks / 100)
        {
            chosen.Add(random.NextInt64(blocks));
        }
        byte[] data = new byte[block];
        using var handle = File.OpenHandle(guestView, FileMode.Open, FileAccess.Write, FileShare.ReadWrite, FileOptions.WriteThrough);
        foreach (long index in chosen)
        {
            random.NextBytes(data);
            RandomAccess.Write(handle, data, index * block);
        }
        return chosen.Count * (long)block;
    }
}
