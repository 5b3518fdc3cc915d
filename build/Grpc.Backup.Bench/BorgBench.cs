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
/// borg-vm-full: a full backup of the dense guest through the Borg provider (snapshot access, NBD, the provider's tar
/// stream into borg import-tar) against <c>borg create</c> reading the same image file directly, with the same chunker
/// and compression, each into a fresh repository on the same filesystem. borg-vm-restore: that archive restored through
/// the provider to a raw file against <c>borg extract --sparse</c> of the peer's archive, both on the same filesystem
/// and synced.
/// </summary>
internal static class BorgBench
{
    public static async Task<IReadOnlyList<BenchResult>> RunAsync(string work, string providerEndpoint, string guestDir, string peerRepository,
        string passphraseFile)
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
                new VmBackupOptions { FleecingDirectory = fleece, RuntimeDirectory = runtime, StorageId = "borg" }, CancellationToken.None);
        }
        finally
        {
            await connection.Backup.JobCleanupAsync(new JobCleanupRequest { JobId = jobId, Success = true });
        }
        double ours = Stopwatch.GetElapsedTime(start).TotalSeconds;

        Environment.SetEnvironmentVariable("BORG_PASSCOMMAND", "cat " + passphraseFile);
        Environment.SetEnvironmentVariable("BORG_BASE_DIR", Path.Combine(work, "peer-borg"));
        double peer = await Tool.TimeAsync("borg", "create", "--chunker-params", "fixed,4194304", "--compression", "lz4",
            peerRepository + "::peer", disk.ImagePath);
        var full = new BenchResult("borg-vm-full", ours, "borg create (same image, fixed 4 MiB, lz4)", peer, $"{size >> 20} MiB disk");

        string restoreTarget = Path.Combine(work, "restore");
        start = Stopwatch.GetTimestamp();
        VmRestoreResult restored = await new VmRestoreRunner(connection, NullLogger<VmRestoreRunner>.Instance).RestoreAsync(backup.ArchiveName,
            new VmRestoreOptions { TargetDirectory = restoreTarget }, CancellationToken.None);
        await Tool.RunAsync("sync", "-f", restored.Disks[disk.DeviceName]);
        double oursRestore = Stopwatch.GetElapsedTime(start).TotalSeconds;
        Directory.Delete(restoreTarget, recursive: true);
        string extracted = Path.Combine(work, "peer-extract");
        Directory.CreateDirectory(extracted);
        double peerRestore = await Tool.TimeAsync("bash", "-c", $"cd '{extracted}' && borg extract --sparse '{peerRepository}::peer' && sync -f .");
        Directory.Delete(extracted, recursive: true);
        var restore = new BenchResult("borg-vm-restore", oursRestore, "borg extract --sparse (peer archive) + sync", peerRestore,
            $"{size >> 20} MiB disk; phases: {restored.Phases}");
        return [full, restore];
    }
}
