using System.Diagnostics;
using Google.Protobuf.WellKnownTypes;
using Grpc.Backup.Host;
using Grpc.Backup.Orchestrator;
using Grpc.Backup.Orchestrator.Inventory;
using Grpc.Backup.Protocol;
using Grpc.Backup.Protocol.V1;
using Microsoft.Extensions.Logging.Abstractions;

namespace Grpc.Backup.Bench;

/// <summary>
/// The two rows every repository-backed provider gets (<c>PREFIX-vm-full</c>, <c>PREFIX-vm-restore</c>): a full
/// backup of the dense guest through the provider (snapshot access, NBD, the provider's own writer) against the
/// repository tool reading the same image file, then that backup restored through the provider to a raw file
/// (synced) against the tool's own restore of its archive (synced). Both sides use fresh repositories on one file
/// system.
/// </summary>
internal static class RepositoryProviderBench
{
    /// <param name="peerBackup">Backs up the image file (its argument) with the tool; timed.</param>
    /// <param name="peerRestore">Restores the tool's archive into the empty directory (its argument) and syncs; timed.</param>
    public static async Task<IReadOnlyList<BenchResult>> RunAsync(string prefix, string work, string providerEndpoint, string guestDir,
        string peerBackupLabel, Func<string, Task> peerBackup, string peerRestoreLabel, Func<string, Task> peerRestore)
    {
        VmGuest guest = GuestInventory.Load(Path.Combine(guestDir, "inventory")).Vms["100"];
        VmDisk disk = guest.Disks[0];
        long size = new FileInfo(disk.ImagePath).Length;
        var (fleece, runtime) = BenchDirectories.Create(work);

        await using var connection = await ProviderConnection.ConnectAsync(ProviderEndpoint.Parse(providerEndpoint),
            new ProviderConnectionOptions { UnaryDeadline = TimeSpan.FromMinutes(10) });
        string jobId = Guid.NewGuid().ToString();
        var start = Stopwatch.GetTimestamp();
        await connection.Backup.JobInitAsync(new JobInitRequest { JobId = jobId, StartTime = Timestamp.FromDateTime(DateTime.UtcNow) });
        VmBackupResult backup;
        try
        {
            backup = await new VmBackupRunner(connection, NullLogger<VmBackupRunner>.Instance).BackupAsync(jobId, guest,
                new VmBackupOptions { FleecingDirectory = fleece, RuntimeDirectory = runtime, StorageId = prefix }, CancellationToken.None);
        }
        finally
        {
            await connection.Backup.JobCleanupAsync(new JobCleanupRequest { JobId = jobId, Success = true });
        }
        double ours = Stopwatch.GetElapsedTime(start).TotalSeconds;
        start = Stopwatch.GetTimestamp();
        await peerBackup(disk.ImagePath);
        double peer = Stopwatch.GetElapsedTime(start).TotalSeconds;
        var full = new BenchResult($"{prefix}-vm-full", ours, peerBackupLabel, peer, $"{size >> 20} MiB disk");

        string restoreTarget = Path.Combine(work, "restore");
        start = Stopwatch.GetTimestamp();
        VmRestoreResult restored = await new VmRestoreRunner(connection, NullLogger<VmRestoreRunner>.Instance).RestoreAsync(backup.ArchiveName,
            new VmRestoreOptions { TargetDirectory = restoreTarget }, CancellationToken.None);
        await Tool.RunAsync("sync", "-f", restored.Disks[disk.DeviceName]);
        double oursRestore = Stopwatch.GetElapsedTime(start).TotalSeconds;
        Directory.Delete(restoreTarget, recursive: true);
        string extracted = Path.Combine(work, "peer-extract");
        Directory.CreateDirectory(extracted);
        start = Stopwatch.GetTimestamp();
        await peerRestore(extracted);
        double peerRestoreSeconds = Stopwatch.GetElapsedTime(start).TotalSeconds;
        Directory.Delete(extracted, recursive: true);
        var restore = new BenchResult($"{prefix}-vm-restore", oursRestore, peerRestoreLabel, peerRestoreSeconds,
            $"{size >> 20} MiB disk; phases: {restored.Phases}");
        return [full, restore];
    }
}
