using Grpc.Backup.Protocol;
using Grpc.Backup.Protocol.V1;
using Grpc.Backup.Providers.Borg.Tests.Infrastructure;
using Grpc.Core;
using static Grpc.Backup.Providers.Directory.Tests.Infrastructure.Images;

namespace Grpc.Backup.Providers.Borg.Tests;

/// <summary>List, stat, attributes, delete and prune against a real borg repository.</summary>
public sealed class RepositoryTests
{
    private const string Device = "drive-scsi0";
    private static readonly DateTimeOffset Day0 = new(2025, 3, 1, 12, 0, 0, TimeSpan.Zero);

    [Fact]
    public async Task Prune_keeps_protected_archives_without_counting_them_and_a_dry_run_removes_nothing()
    {
        await using var provider = await BorgProvider.StartAsync();
        var host = new SimulatedHost(provider.Connection);
        string image = provider.Work("disk.raw");
        CreateSparse(image, 4 * MiB);
        WriteRandom(image, 0, MiB, seed: 2);
        var names = new List<string>();
        await using (QemuNbdExport export = await QemuNbdExport.ReadOnlyRawAsync(image, provider.Work("e.sock")))
        {
            for (int day = 0; day < 4; day++)
            {
                BackupOutcome outcome = await host.BackupAsync("700", Day0.AddDays(day), [new VolumeSpec(Device, 4 * MiB, BitmapMode.New, export)]);
                names.Add(outcome.ArchiveName);
            }
        }
        var repository = provider.Connection.Repository;
        await repository.UpdateBackupAttributesAsync(new UpdateBackupAttributesRequest { ArchiveName = names[0], Protected = true, Notes = "before the upgrade" });

        RpcException refused = await Assert.ThrowsAsync<RpcException>(async () =>
            await repository.DeleteBackupAsync(new DeleteBackupRequest { ArchiveName = names[0] }));
        Assert.Equal(ErrorReason.BackupProtected, ProviderErrors.GetReason(refused));

        var policy = new RetentionPolicy { KeepLast = 2 };
        PruneBackupsResponse dry = await repository.PruneBackupsAsync(new PruneBackupsRequest { GuestId = "700", Policy = policy, DryRun = true });
        Assert.Equal([names[1]], dry.Decisions.Where(d => !d.Keep).Select(d => d.ArchiveName));
        Assert.Equal("protected", dry.Decisions.Single(d => d.ArchiveName == names[0]).Reason);
        Assert.Equal(4, (await repository.ListBackupsAsync(new ListBackupsRequest { GuestId = "700" })).Backups.Count);

        await repository.PruneBackupsAsync(new PruneBackupsRequest { GuestId = "700", Policy = policy });
        ListBackupsResponse left = await repository.ListBackupsAsync(new ListBackupsRequest { GuestId = "700" });
        Assert.Equal([names[3], names[2], names[0]], left.Backups.Select(b => b.ArchiveName));
        BackupEntry kept = left.Backups.Single(b => b.ArchiveName == names[0]);
        Assert.True(kept.Protected);
        Assert.Equal("before the upgrade", kept.Notes);
        Assert.Equal((ulong)(4 * MiB), kept.RestoredSizeBytes);
        (_, string borgList, _) = await provider.BorgAsync("list", "--short", provider.RepositoryPath);
        Assert.Equal(3, borgList.Split('\n', StringSplitOptions.RemoveEmptyEntries).Length);

        await repository.DeleteBackupAsync(new DeleteBackupRequest { ArchiveName = names[3] });
        await repository.DeleteBackupAsync(new DeleteBackupRequest { ArchiveName = names[3] }); // idempotent
        RpcException gone = await Assert.ThrowsAsync<RpcException>(async () =>
            await repository.StatBackupAsync(new StatBackupRequest { ArchiveName = names[3] }));
        Assert.Equal(StatusCode.NotFound, gone.StatusCode);
        // Every remaining archive restores on its own.
        string expected = await Sha256OfFileAsync(image);
        Assert.Equal(expected, (await host.RestoreAsync(names[2], Device)).Sha256);
        GetCapacityResponse capacity = await repository.GetCapacityAsync(new GetCapacityRequest());
        Assert.True(capacity.TotalBytes > 0 && capacity.AvailableBytes <= capacity.TotalBytes);
    }
}
