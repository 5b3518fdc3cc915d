using Grpc.Backup.Protocol;
using Grpc.Backup.Protocol.V1;
using Grpc.Backup.Providers.Directory.Tests.Infrastructure;
using static Grpc.Backup.Providers.Directory.Tests.Infrastructure.Images;

namespace Grpc.Backup.Providers.Directory.Tests;

public sealed class IncrementalBackupTests
{
    private const string Device = "drive-scsi0";
    private static readonly DateTimeOffset Time = new(2025, 4, 1, 8, 0, 0, TimeSpan.Zero);

    [Fact]
    public async Task A_full_and_two_incrementals_each_restore_byte_exact()
    {
        await using var provider = await DirectoryProvider.StartAsync();
        var host = new SimulatedHost(provider.Connection);
        Qcow2Disk disk = await Qcow2Disk.CreateAsync(provider.Work("disk.qcow2"), 32 * MiB, seed: 3);
        string[] expected = new string[3];
        ChunkDigestList[] digests = new ChunkDigestList[3];
        BackupOutcome[] backups = new BackupOutcome[3];

        expected[0] = await disk.Sha256Async();
        digests[0] = await disk.ChunkDigestsAsync();
        backups[0] = await BackupAsync(host, provider, disk, 0, BitmapMode.New);
        await disk.ClearBitmapAsync();

        await disk.WriteAsync(0xab, 1 * MiB, 64 * 1024);       // over data
        await disk.WriteAsync(0xcd, 14 * MiB, 192 * 1024);     // into the hole
        await disk.ZeroAsync(25 * MiB, 64 * 1024);             // data becomes zeros
        expected[1] = await disk.Sha256Async();
        digests[1] = await disk.ChunkDigestsAsync();
        backups[1] = await BackupAsync(host, provider, disk, 1, BitmapMode.Reuse);
        await disk.ClearBitmapAsync();

        await disk.WriteAsync(0xef, 2 * MiB, 64 * 1024);
        await disk.WriteAsync(0x5a, 30 * MiB, 1 * MiB);
        expected[2] = await disk.Sha256Async();
        digests[2] = await disk.ChunkDigestsAsync();
        backups[2] = await BackupAsync(host, provider, disk, 2, BitmapMode.Reuse);

        Assert.Equal(IncrementalChoice.New, backups[0].Choices[Device]);
        Assert.Equal(IncrementalChoice.Use, backups[1].Choices[Device]);
        Assert.Equal(IncrementalChoice.Use, backups[2].Choices[Device]);
        // Only the dirty clusters were read.
        Assert.Equal((ulong)(320 * 1024), backups[1].Completed(Device).BytesRead);
        Assert.Equal((ulong)(256 * 1024), backups[1].Completed(Device).BytesStored);
        Assert.Equal((ulong)(MiB + 64 * 1024), backups[2].Completed(Device).BytesRead);
        Assert.Equal(BitmapMode.Reuse, backups[2].Completed(Device).BitmapMode);
        Assert.True(backups[1].Stats.ArchiveSizeBytes < 2 * MiB, $"an incremental took {backups[1].Stats.ArchiveSizeBytes} bytes");
        // Only the chunks the dirty ranges touch were completed from the stored chain (chunks 0, 3 and 6 of 8, less
        // their dirty bytes; then chunks 0 and 7): the clean chunks' digests came from the base's list.
        AssertStoredRead(backups[1], 3 * ChunkDigestList.ChunkSize - 320 * 1024);
        AssertStoredRead(backups[2], 2 * ChunkDigestList.ChunkSize - MiB - 64 * 1024);

        for (int i = 0; i < 3; i++)
        {
            RestoredVolume restored = await host.RestoreAsync(backups[i].ArchiveName, Device);
            Assert.Equal(expected[i], restored.Sha256);
            // An incremental's digest covers the whole volume: its dirty chunks hashed, the clean ones from its base's list.
            VolumeCompleted completed = backups[i].Completed(Device);
            Assert.Equal(ChunkDigestList.Algorithm, completed.Digest.Algorithm);
            Assert.Equal((uint)ChunkDigestList.ChunkSize, completed.Digest.ChunkSize);
            Assert.Equal(digests[i].Value, completed.Digest.Value);
            Assert.Equal(digests[i].Digests.ToArray(), backups[i].ChunkDigests(Device, 32 * MiB).Digests.ToArray());
            Assert.Equal("", completed.ContentSha256);
            Assert.Equal(i == 0 ? Transport.FdKind.File : Transport.FdKind.NbdSocket, restored.SourceKind);
        }
        StatBackupResponse stat = await provider.Connection.Repository.StatBackupAsync(new StatBackupRequest { ArchiveName = backups[2].ArchiveName });
        Assert.True(stat.Backup.Incremental);
        Assert.Equal((ulong)(32 * MiB), stat.Backup.RestoredSizeBytes);
    }

    private static void AssertStoredRead(BackupOutcome backup, long bytes) =>
        Assert.Contains(backup.Events, e => e.EventCase == BackupVmEvent.EventOneofCase.Log
            && e.Log.Message.Contains($"read {bytes} bytes of the stored chain for its chunk digests", StringComparison.Ordinal));

    [Fact]
    public async Task QueryIncremental_answers_new_first_then_use_and_new_after_a_size_change()
    {
        await using var provider = await DirectoryProvider.StartAsync();
        var host = new SimulatedHost(provider.Connection);
        string source = provider.Work("s.raw");
        CreateSparse(source, 4 * MiB);
        WriteRandom(source, 0, MiB, seed: 5);
        await using (var export = await QemuNbdExport.ReadOnlyRawAsync(source, provider.Work("s.sock")))
        {
            BackupOutcome first = await host.BackupAsync("200", Time, [new VolumeSpec(Device, 4 * MiB, BitmapMode.New, export)]);
            Assert.Equal(IncrementalChoice.New, first.Choices[Device]);
        }

        string job = await host.JobInitAsync();
        string backupId = Guid.NewGuid().ToString();
        await host.BackupInitAsync(job, backupId, "200", Time.AddHours(1));
        Dictionary<string, IncrementalChoice> same = await host.QueryIncrementalAsync(backupId, (Device, 4 * MiB), ("drive-scsi1", 4 * MiB));
        Dictionary<string, IncrementalChoice> grown = await host.QueryIncrementalAsync(backupId, (Device, 8 * MiB));
        Dictionary<string, IncrementalChoice> otherGuest = await QueryOtherGuestAsync(host, job);
        await host.BackupCleanupAsync(job, backupId, success: false);

        Assert.Equal(IncrementalChoice.Use, same[Device]);
        Assert.Equal(IncrementalChoice.New, same["drive-scsi1"]);
        Assert.Equal(IncrementalChoice.New, grown[Device]);
        Assert.Equal(IncrementalChoice.New, otherGuest[Device]);
    }

    [Fact]
    public async Task Failed_and_cancelled_backups_leave_no_archive_and_the_chain_continues_from_the_last_complete_one()
    {
        await using var provider = await DirectoryProvider.StartAsync();
        var host = new SimulatedHost(provider.Connection);
        Qcow2Disk disk = await Qcow2Disk.CreateAsync(provider.Work("disk.qcow2"), 16 * MiB, seed: 4);
        BackupOutcome complete = await BackupAsync(host, provider, disk, 0, BitmapMode.New);
        await disk.ClearBitmapAsync();
        await disk.WriteAsync(0x11, 0, 4 * MiB);

        // The host fails this backup after its data was stored: the provider must drop it.
        string job = await host.JobInitAsync();
        string failedId = Guid.NewGuid().ToString();
        string failedArchive = await host.BackupInitAsync(job, failedId, "300", Time.AddHours(1));
        await using (QemuNbdExport export = await disk.ExportAsync(provider.Work("f.sock"), withBitmap: true))
        {
            await host.BackupVmAsync(failedId, [new VolumeSpec(Device, disk.Size, BitmapMode.Reuse, export, Qcow2Disk.BitmapContext)],
                "cfg"u8.ToArray());
        }
        await host.BackupCleanupAsync(job, failedId, success: false);

        // The host cancels this one mid-copy (a slow bandwidth limit keeps it busy).
        string cancelledId = Guid.NewGuid().ToString();
        string cancelledArchive = await host.BackupInitAsync(job, cancelledId, "300", Time.AddHours(2));
        await using (QemuNbdExport export = await disk.ExportAsync(provider.Work("c.sock"), withBitmap: true))
        {
            var error = await SimulatedHost.FailsAsync(() => host.BackupVmAsync(cancelledId,
                [new VolumeSpec(Device, disk.Size, BitmapMode.Reuse, export, Qcow2Disk.BitmapContext)], "cfg"u8.ToArray(),
                bandwidth: 256 * 1024, cancelWhen: e => e.EventCase == BackupVmEvent.EventOneofCase.Progress));
            Assert.Equal(Grpc.Core.StatusCode.Cancelled, error.StatusCode);
        }
        await host.BackupCleanupAsync(job, cancelledId, success: false);
        await host.BackupCleanupAsync(job, cancelledId, success: false); // idempotent
        await provider.Connection.Backup.JobCleanupAsync(new JobCleanupRequest { JobId = job, Success = false });

        Assert.Equal(new[] { complete.ArchiveName }, provider.ArchiveDirectories());
        Assert.DoesNotContain(failedArchive, provider.ArchiveDirectories());
        Assert.DoesNotContain(cancelledArchive, provider.ArchiveDirectories());
        ListBackupsResponse list = await provider.Connection.Repository.ListBackupsAsync(new ListBackupsRequest());
        Assert.Equal(new[] { complete.ArchiveName }, list.Backups.Select(b => b.ArchiveName));

        // The bitmap was never cleared after the failures, so the next incremental holds every change since the
        // complete backup, and it must stack on that one.
        await disk.WriteAsync(0x22, 8 * MiB, 64 * 1024);
        string expected = await disk.Sha256Async();
        BackupOutcome next = await BackupAsync(host, provider, disk, 3, BitmapMode.Reuse);
        Assert.Equal(IncrementalChoice.Use, next.Choices[Device]);
        Assert.Equal((ulong)(4 * MiB + 64 * 1024), next.Completed(Device).BytesRead);
        Assert.Equal(expected, (await host.RestoreAsync(next.ArchiveName, Device)).Sha256);
    }

    [Fact]
    public async Task After_a_provider_restart_the_chain_continues_and_a_lost_backup_is_cleaned_up()
    {
        await using var provider = await DirectoryProvider.StartAsync();
        Qcow2Disk disk = await Qcow2Disk.CreateAsync(provider.Work("disk.qcow2"), 8 * MiB, seed: 6);
        BackupOutcome complete = await BackupAsync(new SimulatedHost(provider.Connection), provider, disk, 0, BitmapMode.New);
        await disk.ClearBitmapAsync();
        var host = new SimulatedHost(provider.Connection);
        string job = await host.JobInitAsync();
        string lostId = Guid.NewGuid().ToString();
        string lost = await host.BackupInitAsync(job, lostId, "300", Time.AddHours(1));

        await provider.RestartAsync();
        host = new SimulatedHost(provider.Connection);
        // The host never learns the lost backup's fate except through the cleanups, which must still work.
        await host.BackupCleanupAsync(job, lostId, success: false);
        var unknownJob = await SimulatedHost.FailsAsync(() => host.BackupInitAsync(job, Guid.NewGuid().ToString(), "300", Time));
        await disk.WriteAsync(0x33, 3 * MiB, 64 * 1024);
        string expected = await disk.Sha256Async();
        BackupOutcome next = await BackupAsync(host, provider, disk, 2, BitmapMode.Reuse);

        Assert.DoesNotContain(lost, provider.ArchiveDirectories());
        Assert.Equal(Grpc.Core.StatusCode.NotFound, unknownJob.StatusCode);
        Assert.Equal(IncrementalChoice.Use, next.Choices[Device]);
        Assert.Equal(expected, (await host.RestoreAsync(next.ArchiveName, Device)).Sha256);
        Assert.Equal(new[] { complete.ArchiveName, next.ArchiveName }, provider.ArchiveDirectories());
    }

    private static async Task<BackupOutcome> BackupAsync(SimulatedHost host, DirectoryProvider provider, Qcow2Disk disk, int hour,
        BitmapMode mode)
    {
        bool incremental = mode == BitmapMode.Reuse;
        await using QemuNbdExport export = await disk.ExportAsync(provider.Work($"export{hour}.sock"), withBitmap: incremental);
        return await host.BackupAsync("300", Time.AddHours(hour),
            [new VolumeSpec(Device, disk.Size, mode, export, incremental ? Qcow2Disk.BitmapContext : "")]);
    }

    private static async Task<Dictionary<string, IncrementalChoice>> QueryOtherGuestAsync(SimulatedHost host, string job)
    {
        string backupId = Guid.NewGuid().ToString();
        await host.BackupInitAsync(job, backupId, "201", Time.AddHours(1));
        try
        {
            return await host.QueryIncrementalAsync(backupId, (Device, 4 * MiB));
        }
        finally
        {
            await host.BackupCleanupAsync(job, backupId, success: false);
        }
    }
}
