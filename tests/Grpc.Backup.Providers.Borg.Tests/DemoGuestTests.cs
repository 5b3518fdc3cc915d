using Google.Protobuf.WellKnownTypes;
using Grpc.Backup.Host;
using Grpc.Backup.Orchestrator;
using Grpc.Backup.Protocol;
using Grpc.Backup.Protocol.V1;
using Grpc.Backup.Providers.Borg.Tests.Infrastructure;
using Grpc.Backup.Tests.Infrastructure;
using Microsoft.Extensions.Logging.Abstractions;

namespace Grpc.Backup.Providers.Borg.Tests;

/// <summary>
/// End to end with real QEMU (the demo guest: qemu-storage-daemon, qcow2 and raw disks, a writer that never stops),
/// the host's runners and the Borg provider: each restore equals the disks at its backup's instant.
/// </summary>
public sealed class DemoGuestTests
{
    [Fact]
    public async Task Full_and_two_incrementals_of_a_writing_guest_restore_to_their_instants()
    {
        await using var provider = await BorgProvider.StartAsync();
        string work = provider.Work("e2e");
        System.IO.Directory.CreateDirectory(work);
        await using var guest = await DemoGuestProcess.StartAsync(Path.Combine(work, "guest"));
        var backups = new List<(VmBackupResult Result, IReadOnlyDictionary<string, string> Expected)>();
        for (int i = 0; i < 3; i++)
        {
            int freezes = guest.FreezeCount;
            VmBackupResult result = await BackupAsync(provider.Connection, guest, work);
            // The expected hashes are those the guest agent recorded at this backup's freeze: without a freeze (the host
            // fell back to another quiesce) there is no oracle for the instant.
            Assert.True(result.Consistency == Consistency.Application && guest.FreezeCount == freezes + 1,
                $"backup {i} was not taken under a guest-agent freeze ({result.Consistency}, {guest.FreezeCount - freezes} freezes)");
            backups.Add((result, guest.LastInstant()));
            await Task.Delay(300); // the guest keeps writing between backups
        }

        Assert.All(backups[0].Result.Volumes, v => Assert.Equal(BitmapMode.New, v.BitmapMode));
        Assert.All(backups[1].Result.Volumes, v => Assert.Equal(BitmapMode.Reuse, v.BitmapMode));
        Assert.All(backups[2].Result.Volumes, v => Assert.Equal(BitmapMode.Reuse, v.BitmapMode));
        // How much an incremental reads depends on how long the writer ran since the last instant (a borg backup re-reads
        // the previous image, so it takes longer than the directory provider's); NbdBackupTests and FileHandleTests pin
        // the exact dirty bytes with a deterministic disk. Here: every restore equals its instant.
        var mismatches = new List<string>();
        for (int i = 0; i < backups.Count; i++)
        {
            var restored = await new VmRestoreRunner(provider.Connection, NullLogger<VmRestoreRunner>.Instance)
                .RestoreAsync(backups[i].Result.ArchiveName, new VmRestoreOptions { TargetDirectory = Path.Combine(work, $"restore{i}") },
                    CancellationToken.None);
            foreach ((string device, string expected) in backups[i].Expected)
            {
                // The restore equals the instant (sha256 below), and the reported digest equals the restore's.
                string reported = backups[i].Result.Volumes.Single(v => v.DeviceName == device).Digest.Value;
                string restoredDigest = (await ChunkDigestList.OfFileAsync(restored.Disks[device], CancellationToken.None)).Value;
                if (reported != restoredDigest)
                {
                    mismatches.Add($"backup {i} device {device}: the provider reported digest {reported}, the restore has {restoredDigest}");
                }
                string actual = Checksums.Sha256File(restored.Disks[device]);
                if (actual != expected)
                {
                    mismatches.Add($"backup {i} ({string.Join(",", backups[i].Result.Volumes.Select(v => $"{v.DeviceName}:{v.BitmapMode}:{v.BytesRead}"))}) "
                        + $"device {device}: restored {actual}, expected {expected}");
                }
            }
            Assert.Equal(guest.Guest.RawConfig.ToArray(), restored.GuestConfig.ToArray());
        }
        Assert.True(mismatches.Count == 0, string.Join("\n", mismatches));
        Assert.Empty(System.IO.Directory.GetFiles(Path.Combine(work, "fleece")));
    }

    /// <summary>A two-disk guest whose first disk takes over 20 s (issue 15): see <see cref="SlowFirstDisk"/>.</summary>
    [Fact]
    public async Task A_two_disk_guest_whose_first_disk_takes_over_20_s_restores_byte_exact()
    {
        await using var provider = await BorgProvider.StartAsync();
        string work = provider.Work("slow");
        System.IO.Directory.CreateDirectory(work);
        await using var guest = await DemoGuestProcess.StartAsync(Path.Combine(work, "guest"), SlowFirstDisk.GuestArguments);
        await SlowFirstDisk.BackUpAndRestoreAsync(provider.Connection, guest, work);
    }

    private static async Task<VmBackupResult> BackupAsync(ProviderConnection connection, DemoGuestProcess guest, string work)
    {
        System.IO.Directory.CreateDirectory(Path.Combine(work, "fleece"));
        System.IO.Directory.CreateDirectory(Path.Combine(work, "run"));
        string jobId = Guid.NewGuid().ToString();
        await connection.Backup.JobInitAsync(new JobInitRequest { JobId = jobId, StartTime = Timestamp.FromDateTime(DateTime.UtcNow) });
        try
        {
            return await new VmBackupRunner(connection, NullLogger<VmBackupRunner>.Instance).BackupAsync(jobId, guest.Guest,
                new VmBackupOptions
                {
                    FleecingDirectory = Path.Combine(work, "fleece"),
                    RuntimeDirectory = Path.Combine(work, "run"),
                    StorageId = "test",
                    // The demo guest's agent hashes its disks while frozen; give it the time a loaded machine needs.
                    AgentTimeout = TimeSpan.FromSeconds(60),
                },
                CancellationToken.None);
        }
        finally
        {
            await connection.Backup.JobCleanupAsync(new JobCleanupRequest { JobId = jobId, Success = true });
        }
    }
}
