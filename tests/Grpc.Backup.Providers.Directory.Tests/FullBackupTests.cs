using Grpc.Backup.Protocol;
using Grpc.Backup.Protocol.V1;
using Grpc.Backup.Providers.Directory.Tests.Infrastructure;
using static Grpc.Backup.Providers.Directory.Tests.Infrastructure.Images;

namespace Grpc.Backup.Providers.Directory.Tests;

public sealed class FullBackupTests
{
    private static readonly DateTimeOffset Time = new(2025, 3, 1, 12, 0, 0, TimeSpan.Zero);

    [Fact]
    public async Task Full_backup_restores_byte_exact_is_stored_sparse_and_trims_the_source()
    {
        await using var provider = await DirectoryProvider.StartAsync();
        var host = new SimulatedHost(provider.Connection);
        const long size = 64 * MiB;
        string source = provider.Work("source.raw");
        CreateMixedRaw(source, size, seed: 1);
        string expected = await Sha256OfFileAsync(source);
        ChunkDigestList expectedDigests = await ChunkDigestList.OfFileAsync(source, CancellationToken.None);
        long sourceAllocatedBefore = await AllocatedBytesAsync(source);
        await using var export = await QemuNbdExport.WritableRawAsync(source, provider.Work("src.sock"));

        BackupOutcome backup = await host.BackupAsync("100", Time, [new VolumeSpec("drive-scsi0", size, BitmapMode.New, export)]);

        Assert.Equal("100/20250301T120000Z", backup.ArchiveName);
        VolumeCompleted completed = backup.Completed("drive-scsi0");
        Assert.Equal(BitmapMode.New, completed.BitmapMode);
        // The never-written hole is not read; the written zeros are read but not stored.
        Assert.Equal((ulong)(48 * MiB), completed.BytesRead);
        Assert.Equal((ulong)(40 * MiB), completed.BytesStored);
        Assert.Contains(backup.Events, e => e.EventCase == BackupVmEvent.EventOneofCase.Progress
            && e.Progress.BytesDone == (ulong)size && e.Progress.BytesTotal == (ulong)size);

        string image = Path.Combine(provider.RepositoryPath, "100", "20250301T120000Z", "drive-scsi0.raw");
        long imageAllocated = await AllocatedBytesAsync(image);
        Assert.Equal(size, new FileInfo(image).Length);
        Assert.InRange(imageAllocated, 40 * MiB, 41 * MiB);
        Assert.Equal((ulong)size, backup.Stats.RestoredSizeBytes);
        Assert.InRange(backup.Stats.ArchiveSizeBytes, (ulong)(40 * MiB), (ulong)(41 * MiB));

        // TRIM released what was stored: the writable export punched it out of the source.
        Assert.True(sourceAllocatedBefore >= 48 * MiB, $"source allocated {sourceAllocatedBefore}");
        Assert.True(await AllocatedBytesAsync(source) < 1 * MiB, "the source still holds data the backup stored");

        RestoredVolume restored = await host.RestoreAsync(backup.ArchiveName, "drive-scsi0");
        Assert.Equal(Transport.FdKind.File, restored.SourceKind);
        Assert.Equal(size, restored.Size);
        Assert.Equal(expected, restored.Sha256);
        // The provider digested the volume as it stored it (holes included): verification compares restores with this.
        Assert.Equal(expectedDigests.Value, backup.Completed("drive-scsi0").Digest.Value);
        Assert.Equal(expectedDigests.Digests.ToArray(), backup.ChunkDigests("drive-scsi0", size).Digests.ToArray());
    }

    [Fact]
    public async Task Several_volumes_with_extra_connections_and_a_read_only_export_back_up_and_restore()
    {
        await using var provider = await DirectoryProvider.StartAsync();
        var host = new SimulatedHost(provider.Connection);
        string first = provider.Work("a.raw");
        string second = provider.Work("b.raw");
        CreateMixedRaw(first, 16 * MiB, seed: 7);
        CreateSparse(second, 8 * MiB);
        WriteRandom(second, 3 * MiB, 1 * MiB + 4096, seed: 8);
        string expectedFirst = await Sha256OfFileAsync(first);
        string expectedSecond = await Sha256OfFileAsync(second);
        // Before the backup: the writable export is trimmed as it is stored.
        string digestFirst = (await ChunkDigestList.OfFileAsync(first, CancellationToken.None)).Value;
        string digestSecond = (await ChunkDigestList.OfFileAsync(second, CancellationToken.None)).Value;
        await using var exportFirst = await QemuNbdExport.WritableRawAsync(first, provider.Work("a.sock"), "drive-scsi0");
        await using var exportSecond = await QemuNbdExport.ReadOnlyRawAsync(second, provider.Work("b.sock"), "drive-virtio1");

        BackupOutcome backup = await host.BackupAsync("101", Time,
        [
            new VolumeSpec("drive-scsi0", 16 * MiB, BitmapMode.None, exportFirst, ExtraConnections: 3),
            new VolumeSpec("drive-virtio1", 8 * MiB, BitmapMode.New, exportSecond),
        ]);

        // The read-only export cannot trim; the provider says so and carries on.
        Assert.Contains(backup.Events, e => e.EventCase == BackupVmEvent.EventOneofCase.Log
            && e.Log.Message.Contains("drive-virtio1", StringComparison.Ordinal) && e.Log.Message.Contains("TRIM", StringComparison.Ordinal));
        Assert.Equal(BitmapMode.None, backup.Completed("drive-scsi0").BitmapMode);
        Assert.Equal((ulong)(MiB + 4096), backup.Completed("drive-virtio1").BytesStored);
        Assert.Equal(expectedFirst, (await host.RestoreAsync(backup.ArchiveName, "drive-scsi0")).Sha256);
        Assert.Equal(expectedSecond, (await host.RestoreAsync(backup.ArchiveName, "drive-virtio1")).Sha256);
        Assert.Equal(digestFirst, backup.Completed("drive-scsi0").Digest.Value);
        Assert.Equal(digestSecond, backup.Completed("drive-virtio1").Digest.Value);
    }

    [Fact]
    public async Task Volumes_copy_at_once_so_a_small_disk_is_stored_while_a_large_one_still_streams()
    {
        await using var provider = await DirectoryProvider.StartAsync();
        var host = new SimulatedHost(provider.Connection);
        string large = provider.Work("large.raw");
        string small = provider.Work("small.raw");
        CreateSparse(large, 32 * MiB);
        WriteRandom(large, 0, 32 * MiB, seed: 31);
        CreateSparse(small, 1 * MiB);
        WriteRandom(small, 0, 1 * MiB, seed: 32);
        string expectedLarge = (await ChunkDigestList.OfFileAsync(large, CancellationToken.None)).Value;
        string expectedSmall = (await ChunkDigestList.OfFileAsync(small, CancellationToken.None)).Value;
        await using var exportLarge = await QemuNbdExport.ReadOnlyRawAsync(large, provider.Work("l.sock"), "drive-scsi0");
        await using var exportSmall = await QemuNbdExport.ReadOnlyRawAsync(small, provider.Work("s.sock"), "drive-scsi1");
        string job = await host.JobInitAsync();
        string backupId = Guid.NewGuid().ToString();
        await host.BackupInitAsync(job, backupId, "104", Time);

        // The large disk comes first and, at 8 MiB/s shared by both, needs about four seconds; copied one after the
        // other, the small disk could only be stored after it.
        List<BackupVmEvent> events = await host.BackupVmAsync(backupId,
            [new VolumeSpec("drive-scsi0", 32 * MiB, BitmapMode.New, exportLarge), new VolumeSpec("drive-scsi1", 1 * MiB, BitmapMode.New, exportSmall)],
            "cfg"u8.ToArray(), bandwidth: 8 * MiB);
        await host.BackupCleanupAsync(job, backupId, success: true);

        int Completed(string device) => events.FindIndex(e => e.EventCase == BackupVmEvent.EventOneofCase.VolumeCompleted
            && e.VolumeCompleted.DeviceName == device);
        Assert.True(Completed("drive-scsi1") >= 0 && Completed("drive-scsi1") < Completed("drive-scsi0"),
            "the small volume was not stored before the large one finished");
        Assert.Equal(expectedLarge, events[Completed("drive-scsi0")].VolumeCompleted.Digest.Value);
        Assert.Equal(expectedSmall, events[Completed("drive-scsi1")].VolumeCompleted.Digest.Value);
    }

    [Fact]
    public async Task The_task_log_is_stored_with_the_archive()
    {
        await using var provider = await DirectoryProvider.StartAsync();
        var host = new SimulatedHost(provider.Connection);
        string source = provider.Work("s.raw");
        CreateSparse(source, 2 * MiB);
        string log = provider.Work("task.log");
        await File.WriteAllTextAsync(log, "INFO: starting backup\nINFO: done\n");
        await using var export = await QemuNbdExport.ReadOnlyRawAsync(source, provider.Work("s.sock"));

        BackupOutcome backup = await host.BackupAsync("102", Time, [new VolumeSpec("drive-scsi0", 2 * MiB, BitmapMode.New, export)],
            logPath: log);

        Assert.Equal("INFO: starting backup\nINFO: done\n",
            await File.ReadAllTextAsync(Path.Combine(provider.RepositoryPath, backup.ArchiveName, "backup.log")));
        Assert.Equal((ulong)0, backup.Completed("drive-scsi0").BytesRead);
    }

    [Fact]
    public async Task The_bandwidth_limit_paces_the_copy_and_BackupVm_runs_once_per_backup()
    {
        await using var provider = await DirectoryProvider.StartAsync();
        var host = new SimulatedHost(provider.Connection);
        string source = provider.Work("s.raw");
        CreateSparse(source, 8 * MiB);
        WriteRandom(source, 0, 4 * MiB, seed: 21);
        await using var export = await QemuNbdExport.ReadOnlyRawAsync(source, provider.Work("s.sock"));
        VolumeSpec volume = new("drive-scsi0", 8 * MiB, BitmapMode.New, export);
        string job = await host.JobInitAsync();
        string backupId = Guid.NewGuid().ToString();
        await host.BackupInitAsync(job, backupId, "103", Time);

        var clock = System.Diagnostics.Stopwatch.StartNew();
        List<BackupVmEvent> events = await host.BackupVmAsync(backupId, [volume], "cfg"u8.ToArray(), bandwidth: 2 * MiB);
        TimeSpan limited = clock.Elapsed;
        var again = await SimulatedHost.FailsAsync(() => host.BackupVmAsync(backupId, [volume], "cfg"u8.ToArray()));
        BackupStats stats = await host.BackupCleanupAsync(job, backupId, success: true);

        // 4 MiB at 2 MiB/s: two seconds, less the short burst the pacing allows.
        Assert.True(limited >= TimeSpan.FromSeconds(1.5), $"4 MiB at 2 MiB/s took only {limited}");
        Assert.True(events.Count(e => e.EventCase == BackupVmEvent.EventOneofCase.Progress) <= 20, "progress is not thinned");
        Assert.Equal(Grpc.Core.StatusCode.FailedPrecondition, again.StatusCode);
        Assert.Equal((ulong)(8 * MiB), stats.RestoredSizeBytes);
    }

    [Fact]
    public async Task A_snapshot_that_breaks_mid_copy_fails_the_call_with_SNAPSHOT_BROKEN_and_leaves_no_archive()
    {
        await using var provider = await DirectoryProvider.StartAsync();
        var host = new SimulatedHost(provider.Connection);
        string source = provider.Work("s.raw");
        CreateSparse(source, 8 * MiB);
        WriteRandom(source, 0, 8 * MiB, seed: 22);
        QemuNbdExport export = await QemuNbdExport.ReadOnlyRawAsync(source, provider.Work("s.sock"));
        string job = await host.JobInitAsync();
        string backupId = Guid.NewGuid().ToString();
        await host.BackupInitAsync(job, backupId, "104", Time);

        // Slow enough (1 MiB/s) that the export is gone long before the copy ends: it is removed once the provider
        // reports its first progress, i.e. while it is copying.
        var copying = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        Task<List<BackupVmEvent>> backup = host.BackupVmAsync(backupId, [new VolumeSpec("drive-scsi0", 8 * MiB, BitmapMode.New, export)],
            "cfg"u8.ToArray(), bandwidth: MiB, cancelWhen: e =>
            {
                if (e.EventCase == BackupVmEvent.EventOneofCase.Progress && e.Progress.BytesDone > 0)
                {
                    copying.TrySetResult();
                }
                return false;
            });
        await Task.WhenAny(copying.Task, backup);
        Assert.True(copying.Task.IsCompleted, "the provider ended the backup before it reported any progress");
        await export.DisposeAsync();
        var error = await SimulatedHost.FailsAsync(() => backup);
        await host.BackupCleanupAsync(job, backupId, success: false);

        Assert.Equal(Grpc.Core.StatusCode.Aborted, error.StatusCode);
        Assert.Equal(ErrorReason.SnapshotBroken, Protocol.ProviderErrors.GetReason(error));
        Assert.Contains("drive-scsi0", error.Status.Detail, StringComparison.Ordinal);
        Assert.Empty(provider.ArchiveDirectories());
    }
}
