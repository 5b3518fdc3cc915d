using Grpc.Backup.Host;
using Grpc.Backup.Orchestrator;
using Grpc.Backup.Protocol.V1;
using Grpc.Backup.Providers.Restic.Tests.Infrastructure;
using Grpc.Backup.Tests.Infrastructure;

namespace Grpc.Backup.Providers.Restic.Tests;

/// <summary>
/// Real QEMU (the demo guest, which never stops writing), the real host runners, and the Python provider storing into
/// a real restic repository: every restore equals the disks at the backup's instant.
/// </summary>
public sealed class VmRoundTripTests
{
    [Fact]
    public async Task Full_and_two_incrementals_of_a_writing_guest_restore_to_their_instants_and_prune_flattens()
    {
        using var scratch = new GuestScratch();
        TempDirectory work = scratch.Directory;
        await using var guest = await DemoGuestProcess.StartAsync(work.File("guest"), "--write-interval-ms", "20");
        await using var provider = await ResticProviderProcess.StartAsync();
        await using var connection = await ProviderConnection.ConnectAsync(provider.Endpoint);
        Assert.Equal("org.grpcbackup.restic", connection.Info.Name);
        byte[] config = guest.Guest.RawConfig.ToArray();
        var backups = new List<(VmBackupResult Result, IReadOnlyDictionary<string, string> Expected)>();
        for (int i = 0; i < 3; i++)
        {
            VmBackupResult result = await HostJobs.BackupAsync(connection, guest, work);
            backups.Add((result, guest.LastInstant()));
            await Task.Delay(300); // the guest keeps writing between backups
        }

        Assert.All(backups[0].Result.Volumes, v => Assert.Equal(BitmapMode.New, v.BitmapMode));
        Assert.All(backups[1].Result.Volumes, v => Assert.Equal(BitmapMode.Reuse, v.BitmapMode));
        Assert.All(backups[2].Result.Volumes, v => Assert.Equal(BitmapMode.Reuse, v.BitmapMode));
        // An increment reads only what changed: less than half of the 128 MiB of disks, with a guest writing every
        // 20 ms (each write dirties a 64 KiB bitmap granule) through a backup of several seconds.
        long incrementRead = backups[2].Result.Volumes.Sum(v => (long)v.BytesRead);
        Assert.True(incrementRead < 64L * 1024 * 1024, $"the increment read {incrementRead} bytes");
        // A full reports the chunk digest of each disk at the instant and streams its chunk list (the restore's, checked
        // below); increments report none (the clean part of a dirty chunk is neither in their snapshot nor cheaply in
        // restic), and the whole-disk sha256 is no longer computed.
        Assert.All(backups.SelectMany(b => b.Result.Volumes), v => Assert.Empty(v.ContentSha256));
        Assert.All(backups.Skip(1).SelectMany(b => b.Result.Volumes), v => Assert.Null(v.Digest));
        await HostJobs.AssertRestoresToAsync(connection, backups[0].Result.ArchiveName, backups[0].Expected, config, work.File("restore0"),
            backups[0].Result);
        for (int i = 1; i < backups.Count; i++)
        {
            await HostJobs.AssertRestoresToAsync(connection, backups[i].Result.ArchiveName, backups[i].Expected, config, work.File($"restore{i}"));
        }
        Assert.Empty(Directory.GetFiles(work.File("fleece")));

        var listed = await connection.Repository.ListBackupsAsync(new ListBackupsRequest { GuestId = "100" });
        Assert.Equal(backups.Select(b => b.Result.ArchiveName).Reverse(), listed.Backups.Select(b => b.ArchiveName));
        Assert.Equal([false, true, true], listed.Backups.Reverse().Select(b => b.Incremental));

        // keep-last 2 removes the full that both increments stand on: the older increment is flattened into a full,
        // and both kept backups still restore to their instants.
        var pruned = await connection.Repository.PruneBackupsAsync(new PruneBackupsRequest
        {
            GuestId = "100", Policy = new RetentionPolicy { KeepLast = 2 },
        });
        Assert.Equal([true, true, false], pruned.Decisions.Select(d => d.Keep));
        listed = await connection.Repository.ListBackupsAsync(new ListBackupsRequest { GuestId = "100" });
        Assert.Equal([backups[2].Result.ArchiveName, backups[1].Result.ArchiveName], listed.Backups.Select(b => b.ArchiveName));
        Assert.False(listed.Backups[1].Incremental, "the new base was flattened");
        for (int i = 1; i < 3; i++)
        {
            await HostJobs.AssertRestoresToAsync(connection, backups[i].Result.ArchiveName, backups[i].Expected, config, work.File($"after{i}"));
        }
        // restic itself no longer holds a snapshot of the removed archive.
        string snapshots = await provider.ResticAsync("snapshots", "--json");
        Assert.DoesNotContain(backups[0].Result.ArchiveName, snapshots, StringComparison.Ordinal);

        // The chain goes on from the last backup after the prune.
        VmBackupResult next = await HostJobs.BackupAsync(connection, guest, work);
        Assert.All(next.Volumes, v => Assert.Equal(BitmapMode.Reuse, v.BitmapMode));
        await HostJobs.AssertRestoresToAsync(connection, next.ArchiveName, guest.LastInstant(), config, work.File("next"));
    }

    /// <summary>A two-disk guest whose first disk takes over 20 s (issue 15): see <see cref="SlowFirstDisk"/>.</summary>
    [Fact]
    public async Task A_two_disk_guest_whose_first_disk_takes_over_20_s_restores_byte_exact()
    {
        using var scratch = new GuestScratch();
        await using var guest = await DemoGuestProcess.StartAsync(scratch.File("guest"), SlowFirstDisk.GuestArguments);
        await using var provider = await ResticProviderProcess.StartAsync();
        await using var connection = await ProviderConnection.ConnectAsync(provider.Endpoint);
        await SlowFirstDisk.BackUpAndRestoreAsync(connection, guest, scratch.Directory.Path);
    }

    [Fact]
    public async Task Deleting_a_middle_increment_keeps_the_newer_one_exact_and_protected_backups_are_never_pruned()
    {
        using var scratch = new GuestScratch();
        TempDirectory work = scratch.Directory;
        await using var guest = await DemoGuestProcess.StartAsync(work.File("guest"), "--write-interval-ms", "20");
        await using var provider = await ResticProviderProcess.StartAsync();
        await using var connection = await ProviderConnection.ConnectAsync(provider.Endpoint);
        byte[] config = guest.Guest.RawConfig.ToArray();
        var backups = new List<(VmBackupResult Result, IReadOnlyDictionary<string, string> Expected)>();
        for (int i = 0; i < 3; i++)
        {
            backups.Add((await HostJobs.BackupAsync(connection, guest, work), guest.LastInstant()));
            await Task.Delay(300);
        }

        var protectedEntry = await connection.Repository.UpdateBackupAttributesAsync(new UpdateBackupAttributesRequest
        {
            ArchiveName = backups[0].Result.ArchiveName, Protected = true, Notes = "before the upgrade, ünïcode",
        });
        Assert.True(protectedEntry.Backup.Protected);
        Assert.Equal("before the upgrade, ünïcode", protectedEntry.Backup.Notes);
        var refused = await Assert.ThrowsAsync<Grpc.Core.RpcException>(() => connection.Repository.DeleteBackupAsync(
            new DeleteBackupRequest { ArchiveName = backups[0].Result.ArchiveName }).ResponseAsync);
        Assert.Equal(Grpc.Core.StatusCode.FailedPrecondition, refused.StatusCode);

        await connection.Repository.DeleteBackupAsync(new DeleteBackupRequest { ArchiveName = backups[1].Result.ArchiveName });
        await HostJobs.AssertRestoresToAsync(connection, backups[2].Result.ArchiveName, backups[2].Expected, config, work.File("r2"));

        // keep-last 1 keeps the newest; the protected full is kept (and not counted) whatever the policy says.
        var pruned = await connection.Repository.PruneBackupsAsync(new PruneBackupsRequest
        {
            GuestId = "100", Policy = new RetentionPolicy { KeepLast = 1 },
        });
        Assert.Equal([(backups[2].Result.ArchiveName, true, "keep-last"), (backups[0].Result.ArchiveName, true, "protected")],
            pruned.Decisions.Select(d => (d.ArchiveName, d.Keep, d.Reason)));
        await HostJobs.AssertRestoresToAsync(connection, backups[0].Result.ArchiveName, backups[0].Expected, config, work.File("r0"));
        var stat = await connection.Repository.StatBackupAsync(new StatBackupRequest { ArchiveName = backups[0].Result.ArchiveName });
        Assert.Equal(128UL * 1024 * 1024, stat.Backup.RestoredSizeBytes);
        Assert.True(stat.Backup.StoredSizeBytes > 0);
    }
}
