using System.Text;
using Grpc.Backup.Protocol;
using Grpc.Backup.Protocol.V1;
using Grpc.Backup.Providers.Directory.Tests.Infrastructure;
using Grpc.Core;
using static Grpc.Backup.Providers.Directory.Tests.Infrastructure.Images;

namespace Grpc.Backup.Providers.Directory.Tests;

public sealed class RepositoryTests
{
    private const string Device = "drive-scsi0";
    private static readonly DateTimeOffset Day = new(2025, 6, 2, 0, 0, 0, TimeSpan.Zero);

    [Fact]
    public async Task List_is_newest_first_filters_by_guest_pages_and_reports_real_sizes()
    {
        await using var provider = await DirectoryProvider.StartAsync();
        var host = new SimulatedHost(provider.Connection);
        string source = provider.Work("s.raw");
        CreateSparse(source, 8 * MiB);
        WriteRandom(source, 2 * MiB, 3 * MiB, seed: 9);
        await using var export = await QemuNbdExport.ReadOnlyRawAsync(source, provider.Work("s.sock"));
        VolumeSpec volume = new(Device, 8 * MiB, BitmapMode.New, export);
        string a = (await host.BackupAsync("500", Day.AddHours(1), [volume])).ArchiveName;
        string b = (await host.BackupAsync("501", Day.AddHours(2), [volume])).ArchiveName;
        string c = (await host.BackupAsync("500", Day.AddHours(3), [volume])).ArchiveName;

        var repository = provider.Connection.Repository;
        ListBackupsResponse all = await repository.ListBackupsAsync(new ListBackupsRequest());
        ListBackupsResponse guest = await repository.ListBackupsAsync(new ListBackupsRequest { GuestId = "500" });
        ListBackupsResponse page1 = await repository.ListBackupsAsync(new ListBackupsRequest { MaxEntries = 2 });
        ListBackupsResponse page2 = await repository.ListBackupsAsync(new ListBackupsRequest { MaxEntries = 2, PageToken = page1.NextPageToken });
        StatBackupResponse stat = await repository.StatBackupAsync(new StatBackupRequest { ArchiveName = a });

        Assert.Equal(new[] { c, b, a }, all.Backups.Select(e => e.ArchiveName));
        Assert.Equal(new[] { c, a }, guest.Backups.Select(e => e.ArchiveName));
        Assert.Equal(new[] { c, b }, page1.Backups.Select(e => e.ArchiveName));
        Assert.Equal(new[] { a }, page2.Backups.Select(e => e.ArchiveName));
        Assert.Equal("", page2.NextPageToken);
        Assert.Equal("500", stat.Backup.GuestId);
        Assert.Equal(GuestType.Vm, stat.Backup.GuestType);
        Assert.Equal(Day.AddHours(1), stat.Backup.BackupTime.ToDateTimeOffset());
        Assert.Equal((ulong)(8 * MiB), stat.Backup.RestoredSizeBytes);
        Assert.False(stat.Backup.Incremental);
        // The stored size is what the archive occupies on disk, as du counts it: the data, not the sparse 8 MiB.
        string du = await RunAsync("du", "-s", "-B1", Path.Combine(provider.RepositoryPath, a));
        Assert.Equal(ulong.Parse(du.Split('\t')[0], System.Globalization.CultureInfo.InvariantCulture), stat.Backup.StoredSizeBytes);
        Assert.InRange(stat.Backup.StoredSizeBytes, (ulong)(3 * MiB), (ulong)(4 * MiB));

        var badToken = await SimulatedHost.FailsAsync(() => repository.ListBackupsAsync(new ListBackupsRequest { PageToken = "x" }).ResponseAsync);
        Assert.Equal(StatusCode.InvalidArgument, badToken.StatusCode);
    }

    [Fact]
    public async Task Protected_backups_cannot_be_deleted_or_pruned_and_dry_run_removes_nothing()
    {
        await using var provider = await DirectoryProvider.StartAsync();
        var host = new SimulatedHost(provider.Connection);
        await using var export = await TinyExportAsync(provider);
        string oldest = (await host.BackupAsync("600", Day.AddHours(1), [Tiny(export)])).ArchiveName;
        string middle = (await host.BackupAsync("600", Day.AddHours(2), [Tiny(export)])).ArchiveName;
        string newest = (await host.BackupAsync("600", Day.AddHours(3), [Tiny(export)])).ArchiveName;
        var repository = provider.Connection.Repository;

        UpdateBackupAttributesResponse updated = await repository.UpdateBackupAttributesAsync(
            new UpdateBackupAttributesRequest { ArchiveName = oldest, Protected = true });
        var refused = await SimulatedHost.FailsAsync(() => repository.DeleteBackupAsync(new DeleteBackupRequest { ArchiveName = oldest }).ResponseAsync);
        var policy = new RetentionPolicy { KeepLast = 1 };
        PruneBackupsResponse dryRun = await repository.PruneBackupsAsync(new PruneBackupsRequest { GuestId = "600", Policy = policy, DryRun = true });
        int afterDryRun = (await repository.ListBackupsAsync(new ListBackupsRequest())).Backups.Count;
        PruneBackupsResponse pruned = await repository.PruneBackupsAsync(new PruneBackupsRequest { GuestId = "600", Policy = policy });
        PruneBackupsResponse again = await repository.PruneBackupsAsync(new PruneBackupsRequest { GuestId = "600", Policy = policy });

        Assert.True(updated.Backup.Protected);
        Assert.Equal(StatusCode.FailedPrecondition, refused.StatusCode);
        Assert.Equal(ErrorReason.BackupProtected, refused.GetReason());
        Assert.Equal(
            new[] { (newest, true, "keep-last"), (middle, false, "removed"), (oldest, true, "protected") },
            dryRun.Decisions.Select(d => (d.ArchiveName, d.Keep, d.Reason)));
        Assert.Equal(3, afterDryRun);
        Assert.Equal(dryRun.Decisions, pruned.Decisions);
        Assert.All(again.Decisions, d => Assert.True(d.Keep));
        Assert.Equal(new[] { oldest, newest }, provider.ArchiveDirectories());

        await repository.UpdateBackupAttributesAsync(new UpdateBackupAttributesRequest { ArchiveName = oldest, Protected = false });
        await repository.DeleteBackupAsync(new DeleteBackupRequest { ArchiveName = oldest });
        await repository.DeleteBackupAsync(new DeleteBackupRequest { ArchiveName = oldest }); // idempotent
        Assert.Equal(new[] { newest }, provider.ArchiveDirectories());
    }

    [Fact]
    public async Task Prune_applies_the_keep_rules_in_order_per_period()
    {
        await using var provider = await DirectoryProvider.StartAsync();
        var host = new SimulatedHost(provider.Connection);
        await using var export = await TinyExportAsync(provider);
        DateTimeOffset[] times =
        [
            Day.AddHours(10), Day.AddHours(12),                 // day 1
            Day.AddDays(1).AddHours(9),                         // day 2
            Day.AddDays(2).AddHours(8), Day.AddDays(2).AddHours(20), // day 3
        ];
        var names = new List<string>();
        foreach (DateTimeOffset time in times)
        {
            names.Add((await host.BackupAsync("700", time, [Tiny(export)])).ArchiveName);
        }

        PruneBackupsResponse response = await provider.Connection.Repository.PruneBackupsAsync(new PruneBackupsRequest
        {
            Policy = new RetentionPolicy { KeepLast = 1, KeepDaily = 2 },
            DryRun = true,
        });

        // keep-last takes day 3's last backup; keep-daily skips day 3 (already kept) and keeps the newest of days 2
        // and 1; the older backups of days 1 and 3 go.
        Assert.Equal(
            new[]
            {
                (names[4], true, "keep-last"), (names[3], false, "removed"), (names[2], true, "keep-daily"),
                (names[1], true, "keep-daily"), (names[0], false, "removed"),
            },
            response.Decisions.Select(d => (d.ArchiveName, d.Keep, d.Reason)));
        PruneBackupsResponse keepAll = await provider.Connection.Repository.PruneBackupsAsync(new PruneBackupsRequest
        {
            GuestId = "700", Policy = new RetentionPolicy(),
        });
        Assert.All(keepAll.Decisions, d => Assert.True(d.Keep));
        Assert.Equal(5, provider.ArchiveDirectories().Count);
    }

    [Fact]
    public async Task Deleting_and_pruning_bases_rebases_their_children_so_every_kept_backup_restores_byte_exact()
    {
        await using var provider = await DirectoryProvider.StartAsync();
        var host = new SimulatedHost(provider.Connection);
        Qcow2Disk disk = await Qcow2Disk.CreateAsync(provider.Work("disk.qcow2"), 16 * MiB, seed: 12);
        var archives = new List<string>();
        var expected = new List<string>();
        for (int i = 0; i < 5; i++)
        {
            if (i > 0)
            {
                await disk.WriteAsync((byte)(0x10 * i), i * 2 * MiB, 128 * 1024);
                await disk.WriteAsync((byte)(0x11 * i), 13 * MiB + i * 64 * 1024, 64 * 1024);
            }
            expected.Add(await disk.Sha256Async());
            bool incremental = i > 0;
            await using (QemuNbdExport export = await disk.ExportAsync(provider.Work($"e{i}.sock"), incremental))
            {
                archives.Add((await host.BackupAsync("800", Day.AddHours(i),
                    [new VolumeSpec(Device, disk.Size, incremental ? BitmapMode.Reuse : BitmapMode.New, export,
                        incremental ? Qcow2Disk.BitmapContext : "")])).ArchiveName);
            }
            await disk.ClearBitmapAsync();
        }
        var repository = provider.Connection.Repository;

        // Delete from the middle of the chain: backup 2 is rebased onto backup 0.
        await repository.DeleteBackupAsync(new DeleteBackupRequest { ArchiveName = archives[1] });
        Assert.Equal(expected[2], (await host.RestoreAsync(archives[2], Device)).Sha256);
        // Prune keep-last 2 removes backups 2 and 0 (the full one): backup 3 becomes standalone, 4 stays on 3.
        PruneBackupsResponse pruned = await repository.PruneBackupsAsync(new PruneBackupsRequest
        {
            GuestId = "800", Policy = new RetentionPolicy { KeepLast = 2 },
        });

        Assert.Equal(new[] { archives[4], archives[3] }, pruned.Decisions.Where(d => d.Keep).Select(d => d.ArchiveName));
        Assert.Equal(new[] { archives[3], archives[4] }, provider.ArchiveDirectories());
        Assert.Equal(expected[3], (await host.RestoreAsync(archives[3], Device)).Sha256);
        Assert.Equal(expected[4], (await host.RestoreAsync(archives[4], Device)).Sha256);
        string chain = await RunAsync("qemu-img", "info", "-U", "--backing-chain",
            Path.Combine(provider.RepositoryPath, archives[4], Device + ".qcow2"));
        Assert.DoesNotContain(archives[0].Split('/')[1], chain, StringComparison.Ordinal);

        // The chain still ends at backup 4, so the next backup is incremental; once 4 is gone it must be full.
        Assert.Equal(IncrementalChoice.Use, await QueryAsync(host, disk.Size));
        await repository.DeleteBackupAsync(new DeleteBackupRequest { ArchiveName = archives[4] });
        Assert.Equal(IncrementalChoice.New, await QueryAsync(host, disk.Size));
        Assert.Equal(expected[3], (await host.RestoreAsync(archives[3], Device)).Sha256);
    }

    [Fact]
    public async Task A_backup_being_restored_cannot_be_deleted_until_the_restore_is_cleaned_up()
    {
        await using var provider = await DirectoryProvider.StartAsync();
        var host = new SimulatedHost(provider.Connection);
        await using var export = await TinyExportAsync(provider);
        string archive = (await host.BackupAsync("950", Day, [Tiny(export)])).ArchiveName;
        var repository = provider.Connection.Repository;
        string restoreId = Guid.NewGuid().ToString();

        RestoreVmInitResponse init = await provider.Connection.Restore.RestoreVmInitAsync(
            new RestoreVmInitRequest { RestoreId = restoreId, ArchiveName = archive });
        var locked = await SimulatedHost.FailsAsync(() => repository.DeleteBackupAsync(new DeleteBackupRequest { ArchiveName = archive }).ResponseAsync);
        await provider.Connection.Restore.RestoreVmCleanupAsync(new RestoreVmCleanupRequest { RestoreId = restoreId, ArchiveName = archive });
        await repository.DeleteBackupAsync(new DeleteBackupRequest { ArchiveName = archive });

        Assert.Equal(new[] { (Device, (ulong)MiB) }, init.Volumes.Select(v => (v.DeviceName, v.SizeBytes)));
        Assert.Equal(StatusCode.Aborted, locked.StatusCode);
        Assert.Equal(ErrorReason.RepositoryLocked, locked.GetReason());
        Assert.Empty(provider.ArchiveDirectories());
    }

    [Fact]
    public async Task Notes_are_replaced_and_limited_to_4096_bytes()
    {
        await using var provider = await DirectoryProvider.StartAsync();
        var host = new SimulatedHost(provider.Connection);
        await using var export = await TinyExportAsync(provider);
        string archive = (await host.BackupAsync("900", Day, [Tiny(export)])).ArchiveName;
        var repository = provider.Connection.Repository;
        string longest = new('é', 2048); // 4096 bytes of UTF-8

        UpdateBackupAttributesResponse updated = await repository.UpdateBackupAttributesAsync(
            new UpdateBackupAttributesRequest { ArchiveName = archive, Notes = longest });
        var tooLong = await SimulatedHost.FailsAsync(() => repository.UpdateBackupAttributesAsync(
            new UpdateBackupAttributesRequest { ArchiveName = archive, Notes = longest + "x" }).ResponseAsync);
        StatBackupResponse stat = await repository.StatBackupAsync(new StatBackupRequest { ArchiveName = archive });
        await repository.UpdateBackupAttributesAsync(new UpdateBackupAttributesRequest { ArchiveName = archive, Notes = "second" });
        StatBackupResponse replaced = await repository.StatBackupAsync(new StatBackupRequest { ArchiveName = archive });

        Assert.Equal(4096, Encoding.UTF8.GetByteCount(updated.Backup.Notes));
        Assert.Equal(StatusCode.InvalidArgument, tooLong.StatusCode);
        Assert.Equal(longest, stat.Backup.Notes);
        Assert.False(stat.Backup.Protected);
        Assert.Equal("second", replaced.Backup.Notes);
    }

    [Fact]
    public async Task Capacity_is_that_of_the_repository_file_system()
    {
        await using var provider = await DirectoryProvider.StartAsync();

        GetCapacityResponse capacity = await provider.Connection.Repository.GetCapacityAsync(new GetCapacityRequest());

        var drive = new DriveInfo(provider.RepositoryPath);
        Assert.Equal((ulong)drive.TotalSize, capacity.TotalBytes);
        Assert.True(capacity.TotalBytes > 0);
        Assert.True(capacity.UsedBytes + capacity.AvailableBytes <= capacity.TotalBytes);
        Assert.InRange(capacity.AvailableBytes, (ulong)drive.AvailableFreeSpace / 2, (ulong)drive.AvailableFreeSpace * 2);
    }

    private static VolumeSpec Tiny(QemuNbdExport export) => new(Device, MiB, BitmapMode.New, export);

    private static async Task<QemuNbdExport> TinyExportAsync(DirectoryProvider provider)
    {
        string source = provider.Work("tiny.raw");
        CreateSparse(source, MiB);
        WriteRandom(source, 0, 64 * 1024, seed: 1);
        return await QemuNbdExport.ReadOnlyRawAsync(source, provider.Work("tiny.sock"));
    }

    private static async Task<IncrementalChoice> QueryAsync(SimulatedHost host, long size)
    {
        string job = await host.JobInitAsync();
        string backupId = Guid.NewGuid().ToString();
        await host.BackupInitAsync(job, backupId, "800", Day.AddDays(1));
        try
        {
            return (await host.QueryIncrementalAsync(backupId, (Device, size)))[Device];
        }
        finally
        {
            await host.BackupCleanupAsync(job, backupId, success: false);
        }
    }
}
