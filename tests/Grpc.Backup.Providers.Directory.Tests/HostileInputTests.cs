using Google.Protobuf;
using Grpc.Backup.Protocol;
using Grpc.Backup.Protocol.V1;
using Grpc.Backup.Providers.Directory.Tests.Infrastructure;
using Grpc.Core;
using static Grpc.Backup.Providers.Directory.Tests.Infrastructure.Images;

namespace Grpc.Backup.Providers.Directory.Tests;

public sealed class HostileInputTests
{
    private const string Device = "drive-scsi0";
    private static readonly DateTimeOffset Time = new(2025, 7, 1, 6, 0, 0, TimeSpan.Zero);

    [Theory]
    [InlineData("../outside/20250101T000000Z")]
    [InlineData("/etc/passwd")]
    [InlineData("100/../../outside/20250101T000000Z")]
    [InlineData("100/./20250101T000000Z")]
    [InlineData("100//20250101T000000Z")]
    [InlineData("100/2025 0101")]
    [InlineData("")]
    public async Task Archive_names_that_could_leave_the_repository_are_invalid_arguments(string name)
    {
        await using var provider = await DirectoryProvider.StartAsync();
        string outside = PlantOutsideArchive(provider);
        var restore = provider.Connection.Restore;
        var repository = provider.Connection.Repository;

        RpcException[] errors =
        [
            await SimulatedHost.FailsAsync(() => restore.RestoreGetMechanismAsync(new RestoreGetMechanismRequest { ArchiveName = name }).ResponseAsync),
            await SimulatedHost.FailsAsync(() => restore.ArchiveGetGuestConfigAsync(new ArchiveGetGuestConfigRequest { ArchiveName = name }).ResponseAsync),
            await SimulatedHost.FailsAsync(() => restore.RestoreVmInitAsync(new RestoreVmInitRequest { RestoreId = "r1", ArchiveName = name }).ResponseAsync),
            await SimulatedHost.FailsAsync(() => repository.StatBackupAsync(new StatBackupRequest { ArchiveName = name }).ResponseAsync),
            await SimulatedHost.FailsAsync(() => repository.DeleteBackupAsync(new DeleteBackupRequest { ArchiveName = name }).ResponseAsync),
            await SimulatedHost.FailsAsync(() => repository.UpdateBackupAttributesAsync(
                new UpdateBackupAttributesRequest { ArchiveName = name, Protected = false }).ResponseAsync),
        ];

        Assert.All(errors, e => Assert.Equal(StatusCode.InvalidArgument, e.StatusCode));
        Assert.True(File.Exists(outside), "a file outside the repository was touched");
    }

    [Fact]
    public async Task Names_of_the_wrong_shape_and_planted_links_are_not_found_and_nothing_outside_is_deleted()
    {
        await using var provider = await DirectoryProvider.StartAsync();
        string outside = PlantOutsideArchive(provider);
        // A link in the repository to a directory outside it that looks like a guest's backups.
        File.CreateSymbolicLink(Path.Combine(provider.RepositoryPath, "666"), Path.GetDirectoryName(Path.GetDirectoryName(outside))!);
        var restore = provider.Connection.Restore;
        var repository = provider.Connection.Repository;

        foreach (string name in new[] { "666/20250101T000000Z", "etc/passwd", "100/20250101T000000Z", "100/20250101T000000Z/x" })
        {
            var mechanism = await SimulatedHost.FailsAsync(() => restore.RestoreGetMechanismAsync(new RestoreGetMechanismRequest { ArchiveName = name }).ResponseAsync);
            var stat = await SimulatedHost.FailsAsync(() => repository.StatBackupAsync(new StatBackupRequest { ArchiveName = name }).ResponseAsync);
            Assert.Equal(StatusCode.NotFound, mechanism.StatusCode);
            Assert.Equal(ErrorReason.ArchiveNotFound, mechanism.GetReason());
            Assert.Equal(StatusCode.NotFound, stat.StatusCode);
            await repository.DeleteBackupAsync(new DeleteBackupRequest { ArchiveName = name });
        }
        PruneBackupsResponse prune = await repository.PruneBackupsAsync(new PruneBackupsRequest { Policy = new RetentionPolicy { KeepLast = 1 } });
        ListBackupsResponse list = await repository.ListBackupsAsync(new ListBackupsRequest());

        Assert.True(File.Exists(outside), "a file outside the repository was deleted");
        Assert.Empty(prune.Decisions);
        Assert.Empty(list.Backups);
    }

    [Fact]
    public async Task An_incomplete_archive_cannot_be_restored_and_BackupInit_is_idempotent_by_backup_id()
    {
        await using var provider = await DirectoryProvider.StartAsync();
        var host = new SimulatedHost(provider.Connection);
        string job = await host.JobInitAsync();
        string backupId = Guid.NewGuid().ToString();

        string archive = await host.BackupInitAsync(job, backupId, "100", Time);
        string repeated = await host.BackupInitAsync(job, backupId, "100", Time.AddMinutes(5));
        var otherGuest = await SimulatedHost.FailsAsync(() => host.BackupInitAsync(job, backupId, "101", Time));
        var incomplete = await SimulatedHost.FailsAsync(() => provider.Connection.Restore.RestoreGetMechanismAsync(
            new RestoreGetMechanismRequest { ArchiveName = archive }).ResponseAsync);
        ListBackupsResponse list = await provider.Connection.Repository.ListBackupsAsync(new ListBackupsRequest());
        var notFinished = await SimulatedHost.FailsAsync(() => host.BackupCleanupAsync(job, backupId, success: true));

        Assert.Equal("100/20250701T060000Z", archive);
        Assert.True(ArchiveName.IsValid(archive));
        Assert.Equal(archive, repeated);
        Assert.Equal(StatusCode.AlreadyExists, otherGuest.StatusCode);
        Assert.Equal(StatusCode.NotFound, incomplete.StatusCode);
        Assert.Equal(ErrorReason.ArchiveNotFound, incomplete.GetReason());
        Assert.Empty(list.Backups);
        Assert.Equal(StatusCode.FailedPrecondition, notFinished.StatusCode);
        Assert.Empty(provider.ArchiveDirectories());
    }

    [Fact]
    public async Task Unknown_operations_fail_with_UNKNOWN_OPERATION_except_the_cleanups()
    {
        await using var provider = await DirectoryProvider.StartAsync();
        var backup = provider.Connection.Backup;
        string unknown = Guid.NewGuid().ToString();

        RpcException[] errors =
        [
            await SimulatedHost.FailsAsync(() => backup.BackupInitAsync(new BackupInitRequest
            {
                JobId = unknown, BackupId = unknown, GuestId = "100", GuestType = GuestType.Vm,
            }).ResponseAsync),
            await SimulatedHost.FailsAsync(() => backup.BackupGetMechanismAsync(new BackupGetMechanismRequest { BackupId = unknown, GuestType = GuestType.Vm }).ResponseAsync),
            await SimulatedHost.FailsAsync(() => backup.BackupVmQueryIncrementalAsync(new BackupVmQueryIncrementalRequest { BackupId = unknown }).ResponseAsync),
            await SimulatedHost.FailsAsync(() => new SimulatedHost(provider.Connection).BackupVmAsync(unknown, [], [])),
            await SimulatedHost.FailsAsync(() => provider.Connection.Restore.RestoreVmVolumeInitAsync(new RestoreVmVolumeInitRequest
            {
                RestoreId = unknown, ArchiveName = "100/20250101T000000Z", DeviceName = Device,
            }).ResponseAsync),
        ];
        await backup.BackupCleanupAsync(new BackupCleanupRequest { BackupId = unknown, Success = false });
        await backup.JobCleanupAsync(new JobCleanupRequest { JobId = unknown });
        await provider.Connection.Restore.RestoreVmVolumeCleanupAsync(new RestoreVmVolumeCleanupRequest { RestoreId = unknown, DeviceName = Device });
        await provider.Connection.Restore.RestoreVmCleanupAsync(new RestoreVmCleanupRequest { RestoreId = unknown });

        Assert.All(errors, e =>
        {
            Assert.Equal(StatusCode.NotFound, e.StatusCode);
            Assert.Equal(ErrorReason.UnknownOperation, e.GetReason());
        });
    }

    [Fact]
    public async Task Bad_BackupVm_requests_are_refused_before_anything_is_stored()
    {
        await using var provider = await DirectoryProvider.StartAsync();
        var host = new SimulatedHost(provider.Connection);
        string source = provider.Work("s.raw");
        CreateSparse(source, 4 * MiB);
        await using var export = await QemuNbdExport.ReadOnlyRawAsync(source, provider.Work("s.sock"));
        string job = await host.JobInitAsync();

        RpcException wrongSize = await FailedBackupVmAsync(host, job, new VolumeSpec(Device, 8 * MiB, BitmapMode.New, export));
        RpcException noPrevious = await FailedBackupVmAsync(host, job,
            new VolumeSpec(Device, 4 * MiB, BitmapMode.Reuse, export, "qemu:dirty-bitmap:bm"));
        RpcException contextWithoutReuse = await FailedBackupVmAsync(host, job,
            new VolumeSpec(Device, 4 * MiB, BitmapMode.New, export, "qemu:dirty-bitmap:bm"));
        RpcException badDevice = await FailedBackupVmAsync(host, job, new VolumeSpec("../etc", 4 * MiB, BitmapMode.New, export));
        RpcException unknownFile = await FileHandleBackupVmAsync(host, job, passFile: false, [new Extent { Offset = 0, Length = MiB }]);
        RpcException descending = await FileHandleBackupVmAsync(host, job, passFile: true,
            [new Extent { Offset = 2 * MiB, Length = MiB }, new Extent { Offset = 0, Length = MiB }]);
        RpcException overlapping = await FileHandleBackupVmAsync(host, job, passFile: true,
            [new Extent { Offset = 0, Length = 2 * MiB }, new Extent { Offset = MiB, Length = MiB }]);
        RpcException pastTheEnd = await FileHandleBackupVmAsync(host, job, passFile: true, [new Extent { Offset = 3 * MiB, Length = 2 * MiB }]);
        RpcException empty = await FileHandleBackupVmAsync(host, job, passFile: true, [new Extent { Offset = 0, Length = 0 }]);
        RpcException noLast = await FileHandleBackupVmAsync(host, job, passFile: true, [new Extent { Offset = 0, Length = MiB }], last: false);

        Assert.Equal(StatusCode.InvalidArgument, wrongSize.StatusCode);
        Assert.Contains("8388608", wrongSize.Status.Detail, StringComparison.Ordinal);
        Assert.Equal(StatusCode.FailedPrecondition, noPrevious.StatusCode);
        Assert.Equal(ErrorReason.SizeMismatch, noPrevious.GetReason());
        Assert.Equal(StatusCode.InvalidArgument, contextWithoutReuse.StatusCode);
        Assert.Equal(StatusCode.InvalidArgument, badDevice.StatusCode);
        Assert.Equal(StatusCode.InvalidArgument, unknownFile.StatusCode);
        Assert.All([descending, overlapping, pastTheEnd, empty, noLast], e => Assert.Equal(StatusCode.InvalidArgument, e.StatusCode));
        Assert.Contains("ascending", descending.Status.Detail, StringComparison.Ordinal);
        Assert.Contains("ended before", noLast.Status.Detail, StringComparison.Ordinal);
        Assert.Empty(provider.ArchiveDirectories());
        Assert.DoesNotContain(System.IO.Directory.EnumerateFiles(provider.RepositoryPath, "*", SearchOption.AllDirectories),
            f => !f.EndsWith("incremental-state.json", StringComparison.Ordinal));
    }

    [Fact]
    public async Task Malformed_container_requests_are_refused_and_an_unreachable_repository_fails_JobInit()
    {
        await using var provider = await DirectoryProvider.StartAsync();
        var backup = provider.Connection.Backup;
        var host = new SimulatedHost(provider.Connection);
        string job = await host.JobInitAsync();
        string backupId = Guid.NewGuid().ToString();
        await backup.BackupInitAsync(new BackupInitRequest { JobId = job, BackupId = backupId, GuestId = "105", GuestType = GuestType.Container });

        // The default mechanism is the provider's own worker, declared as a command the host can check.
        var mechanism = await backup.BackupGetMechanismAsync(new BackupGetMechanismRequest { BackupId = backupId, GuestType = GuestType.Container });
        var wrongType = await SimulatedHost.FailsAsync(() => backup.BackupGetMechanismAsync(
            new BackupGetMechanismRequest { BackupId = backupId, GuestType = GuestType.Vm }).ResponseAsync);
        var noSource = await SimulatedHost.FailsAsync(async () =>
        {
            using var call = backup.BackupContainer(new BackupContainerRequest { BackupId = backupId });
            await call.ResponseStream.MoveNext();
        });
        var shortToken = await SimulatedHost.FailsAsync(async () =>
        {
            using var call = backup.BackupContainer(new BackupContainerRequest { BackupId = backupId, WorkerToken = Google.Protobuf.ByteString.CopyFrom(1, 2, 3) });
            await call.ResponseStream.MoveNext();
        });
        await host.BackupCleanupAsync(job, backupId, success: false);
        System.IO.Directory.Delete(provider.RepositoryPath, recursive: true);
        var unreachable = await SimulatedHost.FailsAsync(() => host.JobInitAsync());

        Assert.Equal(ContainerBackupMechanism.Directory, mechanism.Container);
        Assert.True(Path.IsPathFullyQualified(mechanism.ContainerWorker.Argv[0]), mechanism.ContainerWorker.ToString());
        Assert.Equal("container-worker", mechanism.ContainerWorker.Argv[^1]);
        Assert.Equal(StatusCode.InvalidArgument, wrongType.StatusCode);
        Assert.Equal(StatusCode.InvalidArgument, noSource.StatusCode);
        Assert.Equal(StatusCode.InvalidArgument, shortToken.StatusCode);
        Assert.Equal(StatusCode.Unavailable, unreachable.StatusCode);
        Assert.Equal(ErrorReason.RepositoryUnreachable, unreachable.GetReason());
    }

    private static async Task<RpcException> FailedBackupVmAsync(SimulatedHost host, string job, VolumeSpec volume)
    {
        string backupId = Guid.NewGuid().ToString();
        await host.BackupInitAsync(job, backupId, "100", Time);
        try
        {
            return await SimulatedHost.FailsAsync(() => host.BackupVmAsync(backupId, [volume], "cfg"u8.ToArray()));
        }
        finally
        {
            await host.BackupCleanupAsync(job, backupId, success: false);
        }
    }

    /// <summary>A FILE_HANDLE BackupVm of a 4 MiB file (or of an fd that was never passed) with the given extents.</summary>
    private static async Task<RpcException> FileHandleBackupVmAsync(SimulatedHost host, string job, bool passFile, Extent[] extents,
        bool last = true)
    {
        string backupId = Guid.NewGuid().ToString();
        await host.BackupInitAsync(job, backupId, "100", Time);
        string path = Path.Combine(Path.GetTempPath(), $"fh-{backupId}.raw");
        try
        {
            using (var create = File.Create(path))
            {
                create.SetLength(4 * MiB);
            }
            using var file = File.OpenHandle(path, FileMode.Open, FileAccess.ReadWrite);
            FdRef reference = passFile
                ? (await host.Connection.SendFdsAsync([new Grpc.Backup.Transport.FdToSend(file, Grpc.Backup.Transport.FdKind.File)], CancellationToken.None))[0]
                : new FdRef { TransferToken = ByteString.CopyFrom(new byte[16]), Kind = FdKind.File };
            return await SimulatedHost.FailsAsync(async () =>
            {
                using var call = host.Connection.Backup.BackupVm();
                await call.RequestStream.WriteAsync(new BackupVmRequest
                {
                    Start = new BackupVmStart
                    {
                        BackupId = backupId,
                        GuestConfig = ByteString.CopyFromUtf8("cfg"),
                        Volumes =
                        {
                            new VmVolume
                            {
                                DeviceName = Device, SizeBytes = 4 * MiB, BitmapMode = BitmapMode.New,
                                File = new FileVolumeSource { File = reference },
                            },
                        },
                    },
                });
                var message = new VolumeExtents { DeviceName = Device, Last = last };
                message.Extents.AddRange(extents);
                try
                {
                    await call.RequestStream.WriteAsync(new BackupVmRequest { Extents = message });
                    await call.RequestStream.CompleteAsync();
                }
                catch (Exception e) when (e is RpcException or InvalidOperationException)
                {
                    // The provider may refuse (and end the call) before the extents are written; its status follows.
                }
                while (await call.ResponseStream.MoveNext())
                {
                }
            });
        }
        finally
        {
            await host.BackupCleanupAsync(job, backupId, success: false);
            File.Delete(path);
        }
    }

    /// <summary>A file outside the repository, in the shape of an archive, that no request may touch.</summary>
    private static string PlantOutsideArchive(DirectoryProvider provider)
    {
        string directory = Path.Combine(provider.Work("outside"), "100", "20250101T000000Z");
        System.IO.Directory.CreateDirectory(directory);
        string file = Path.Combine(directory, "manifest.json");
        File.WriteAllText(file, "{}");
        return file;
    }
}
