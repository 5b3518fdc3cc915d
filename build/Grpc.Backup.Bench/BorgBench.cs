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
/// and compression, each into a fresh repository on the same filesystem.
/// </summary>
internal static class BorgBench
{
    public static async Task<BenchResult> RunAsync(string work, string providerEndpoint, string guestDir, string peerRepository,
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
        try
        {
            await new VmBackupRunner(connection, NullLogger<VmBackupRunner>.Instance).BackupAsync(jobId, guest,
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
        return new BenchResult("borg-vm-full", ours, "borg create (same image, fixed 4 MiB, lz4)", peer, $"{size >> 20} MiB disk");
    }
}
