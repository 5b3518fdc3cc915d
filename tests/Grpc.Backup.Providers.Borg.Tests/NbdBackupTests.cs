using Grpc.Backup.Protocol;
using Grpc.Backup.Protocol.V1;
using Grpc.Backup.Providers.Borg.Tests.Infrastructure;
using static Grpc.Backup.Providers.Directory.Tests.Infrastructure.Images;

namespace Grpc.Backup.Providers.Borg.Tests;

/// <summary>VM backups over NBD (qemu-nbd standing in for the host's export) into a real borg repository.</summary>
public sealed class NbdBackupTests
{
    private const string Device = "drive-scsi0";
    private static readonly DateTimeOffset Time = new(2025, 4, 1, 8, 0, 0, TimeSpan.Zero);

    [Fact]
    public async Task A_full_and_two_incrementals_each_restore_byte_exact_and_secrets_stay_out_of_argv_and_logs()
    {
        await using var provider = await BorgProvider.StartAsync();
        var host = new SimulatedHost(provider.Connection);
        Qcow2Disk disk = await Qcow2Disk.CreateAsync(provider.Work("disk.qcow2"), 32 * MiB, seed: 3);
        string[] expected = new string[3];
        ChunkDigestList[] digests = new ChunkDigestList[3];
        var backups = new BackupOutcome[3];

        expected[0] = await disk.Sha256Async();
        digests[0] = await disk.ChunkDigestsAsync();
        // While the first backup runs, look at every borg the provider starts.
        using var watching = new CancellationTokenSource();
        Task<List<string>> seen = WatchBorgChildrenAsync(provider, watching.Token);
        backups[0] = await BackupAsync(host, provider, disk, 0, BitmapMode.New);
        await watching.CancelAsync();
        List<string> borgProcesses = await seen;
        await disk.ClearBitmapAsync();

        await disk.WriteAsync(0xab, 1 * MiB, 64 * 1024);
        await disk.WriteAsync(0xcd, 14 * MiB, 192 * 1024);
        await disk.ZeroAsync(25 * MiB, 64 * 1024);
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
        // Only the dirty ranges came from the guest; the rest came from the previous archive.
        Assert.Equal((ulong)(320 * 1024), backups[1].Completed(Device).BytesRead);
        Assert.Equal((ulong)(MiB + 64 * 1024), backups[2].Completed(Device).BytesRead);
        Assert.Equal(BitmapMode.Reuse, backups[2].Completed(Device).BitmapMode);
        // Unchanged 4 MiB blocks dedupe: an incremental adds about the changed blocks, not the disk.
        Assert.True(backups[1].Stats.ArchiveSizeBytes < 3 * 4 * MiB + MiB,
            $"an incremental added {backups[1].Stats.ArchiveSizeBytes} bytes");
        Assert.True(backups[1].Stats.CompressedSizeBytes > backups[1].Stats.ArchiveSizeBytes);
        Assert.Equal((ulong)(32 * MiB), backups[1].Stats.RestoredSizeBytes);

        for (int i = 0; i < 3; i++)
        {
            // The hash the provider reports is the source's at the backup's instant, incrementals included.
            Assert.Equal(digests[i].Value, backups[i].Completed(Device).Digest.Value);
            Assert.Equal(digests[i].Digests.ToArray(), backups[i].ChunkDigests(Device, digests[i].VolumeSize).Digests.ToArray());
            RestoredVolume restored = await host.RestoreAsync(backups[i].ArchiveName, Device);
            Assert.Equal(expected[i], restored.Sha256);
            Assert.Equal(Transport.FdKind.File, restored.SourceKind);
        }
        ArchiveGetGuestConfigResponse config = await provider.Connection.Restore.ArchiveGetGuestConfigAsync(
            new ArchiveGetGuestConfigRequest { ArchiveName = backups[2].ArchiveName });
        Assert.Equal(SimulatedHost.DefaultGuestConfig, config.GuestConfig.ToStringUtf8());

        // The passphrase is in no borg's argv or environment, and in nothing the provider logged.
        Assert.Contains(borgProcesses, p => p.Contains("import-tar", StringComparison.Ordinal));
        Assert.All(borgProcesses, p => Assert.DoesNotContain(BorgProvider.Passphrase, p, StringComparison.Ordinal));
        Assert.DoesNotContain(BorgProvider.Passphrase, provider.Process.StandardError, StringComparison.Ordinal);
        Assert.DoesNotContain(BorgProvider.Passphrase, provider.Process.StandardOutput, StringComparison.Ordinal);

        (int check, _, string checkErrors) = await provider.BorgAsync("check", provider.RepositoryPath);
        Assert.True(check == 0, checkErrors);
    }

    [Fact]
    public async Task A_second_full_backup_of_an_unchanged_1_GiB_disk_adds_under_5_percent()
    {
        await using var provider = await BorgProvider.StartAsync();
        var host = new SimulatedHost(provider.Connection);
        string image = provider.Work("disk.raw");
        CreateSparse(image, 1024 * MiB);
        WriteRandom(image, 0, 192 * MiB, seed: 5);
        WriteRandom(image, 700 * MiB, 64 * MiB, seed: 6);
        string expected = await Sha256OfFileAsync(image);
        // Before the backups: the writable export is trimmed as it is stored.
        string digest = (await ChunkDigestList.OfFileAsync(image, CancellationToken.None)).Value;

        BackupOutcome first = await FullAsync(host, provider, image, 0);
        BackupOutcome second = await FullAsync(host, provider, image, 1);

        Assert.True(first.Stats.ArchiveSizeBytes > 250 * MiB, $"the first full added {first.Stats.ArchiveSizeBytes}");
        Assert.True(second.Stats.ArchiveSizeBytes < first.Stats.ArchiveSizeBytes / 20,
            $"the second full added {second.Stats.ArchiveSizeBytes} of {first.Stats.ArchiveSizeBytes}");
        Assert.Equal((ulong)(1024 * MiB), second.Stats.RestoredSizeBytes);
        Assert.Equal(digest, first.Completed(Device).Digest.Value);
        Assert.Equal(digest, second.Completed(Device).Digest.Value);
        Assert.Equal(expected, (await host.RestoreAsync(second.ArchiveName, Device)).Sha256);
        // The export was writable: everything stored was trimmed, so the source is all holes now.
        long allocated = await AllocatedBytesAsync(provider.Work("copy1.raw"));
        Assert.True(allocated < MiB, $"{allocated} bytes of the source are still allocated after the backup trimmed what it stored");
    }

    private static async Task<BackupOutcome> FullAsync(SimulatedHost host, BorgProvider provider, string image, int hour)
    {
        // Each backup reads its own copy: the writable export trims what was stored.
        string copy = provider.Work($"copy{hour}.raw");
        await RunAsync("cp", "--sparse=always", image, copy);
        await using QemuNbdExport export = await QemuNbdExport.WritableRawAsync(copy, provider.Work($"export{hour}.sock"));
        BackupOutcome outcome = await host.BackupAsync("400", Time.AddHours(hour), [new VolumeSpec(Device, 1024 * MiB, BitmapMode.New, export)]);
        return outcome;
    }

    private static async Task<BackupOutcome> BackupAsync(SimulatedHost host, BorgProvider provider, Qcow2Disk disk, int hour, BitmapMode mode)
    {
        bool incremental = mode == BitmapMode.Reuse;
        await using QemuNbdExport export = await disk.ExportAsync(provider.Work($"export{hour}.sock"), withBitmap: incremental);
        return await host.BackupAsync("300", Time.AddHours(hour),
            [new VolumeSpec(Device, disk.Size, mode, export, incremental ? Qcow2Disk.BitmapContext : "")]);
    }

    private static async Task<List<string>> WatchBorgChildrenAsync(BorgProvider provider, CancellationToken cancellationToken)
    {
        var seen = new List<string>();
        while (!cancellationToken.IsCancellationRequested)
        {
            foreach (int pid in provider.BorgChildren())
            {
                seen.Add(BorgProvider.CommandLine(pid) + "\n" + BorgProvider.Environment(pid));
            }
            await Task.Delay(20, CancellationToken.None);
        }
        return seen;
    }
}
