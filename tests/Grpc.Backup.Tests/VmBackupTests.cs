using Google.Protobuf.WellKnownTypes;
using Grpc.Backup.Host;
using Grpc.Backup.Orchestrator;
using Grpc.Backup.Protocol.V1;
using Grpc.Backup.Tests.Infrastructure;
using Microsoft.Extensions.Logging.Abstractions;

namespace Grpc.Backup.Tests;

/// <summary>
/// End to end against real QEMU and the real directory provider: a guest that never stops writing is backed up (full,
/// then incrementals) and every restore equals the disks' content at the backup's instant.
/// </summary>
public sealed class VmBackupTests
{
    [Fact]
    public async Task Full_and_two_incrementals_of_a_writing_guest_restore_to_their_instants()
    {
        using var work = new TempDirectory();
        await using var guest = await DemoGuestProcess.StartAsync(work.File("guest"));
        await using var provider = await DirectoryProviderProcess.StartAsync();
        await using var connection = await ProviderConnection.ConnectAsync(provider.Endpoint);
        var backups = new List<(VmBackupResult Result, IReadOnlyDictionary<string, string> Expected)>();

        for (int i = 0; i < 3; i++)
        {
            VmBackupResult result = await BackupAsync(connection, guest, work);
            backups.Add((result, guest.LastInstant()));
            await Task.Delay(300); // the guest keeps writing between backups
        }

        Assert.All(backups[0].Result.Volumes, v => Assert.Equal(BitmapMode.New, v.BitmapMode));
        Assert.All(backups[1].Result.Volumes, v => Assert.Equal(BitmapMode.Reuse, v.BitmapMode));
        Assert.All(backups[2].Result.Volumes, v => Assert.Equal(BitmapMode.Reuse, v.BitmapMode));
        Assert.Equal(Consistency.Application, backups[0].Result.Consistency);
        // An incremental reads only what changed: far less than the 128 MiB of disks.
        Assert.True(backups[2].Result.Volumes.Sum(v => (long)v.BytesRead) < 32L * 1024 * 1024);
        for (int i = 0; i < backups.Count; i++)
        {
            string target = work.File($"restore{i}");
            var restored = await new VmRestoreRunner(connection, NullLogger<VmRestoreRunner>.Instance)
                .RestoreAsync(backups[i].Result.ArchiveName, new VmRestoreOptions { TargetDirectory = target }, CancellationToken.None);
            foreach (var (device, expected) in backups[i].Expected)
            {
                Assert.Equal(expected, Checksums.Sha256File(restored.Disks[device]));
            }
            Assert.Equal(guest.Guest.RawConfig.ToArray(), restored.GuestConfig.ToArray());
        }
        Assert.Empty(Directory.GetFiles(work.File("fleece")));
    }

    internal static async Task<VmBackupResult> BackupAsync(ProviderConnection connection, DemoGuestProcess guest, TempDirectory work)
    {
        Directory.CreateDirectory(work.File("fleece"));
        Directory.CreateDirectory(work.File("run"));
        string jobId = Guid.NewGuid().ToString();
        await connection.Backup.JobInitAsync(new JobInitRequest { JobId = jobId, StartTime = Timestamp.FromDateTime(DateTime.UtcNow) });
        try
        {
            return await new VmBackupRunner(connection, NullLogger<VmBackupRunner>.Instance).BackupAsync(jobId, guest.Guest,
                new VmBackupOptions { FleecingDirectory = work.File("fleece"), RuntimeDirectory = work.File("run"), StorageId = "test" },
                CancellationToken.None);
        }
        finally
        {
            await connection.Backup.JobCleanupAsync(new JobCleanupRequest { JobId = jobId, Success = true });
        }
    }
}
