using System.IO.Pipes;
using Google.Protobuf;
using Google.Protobuf.WellKnownTypes;
using Grpc.Backup.Host;
using Grpc.Backup.Protocol.V1;
using Grpc.Backup.Transport;
using FdKind = Grpc.Backup.Transport.FdKind;

namespace Grpc.Backup.Providers.Restic.Tests.Infrastructure;

/// <summary>
/// The provider side of a TAR_STREAM container backup, driven the way the host drives it: the tar bytes go through a
/// pipe whose read end is passed on the sideband.
/// </summary>
internal static class ContainerJobs
{
    public static readonly byte[] Config = "arch: amd64\nhostname: ct200\nrootfs: local:200/rootfs.raw\n"u8.ToArray();

    /// <summary>Backs up <paramref name="tar"/> as guest 200; returns the archive name, or throws the provider's status.</summary>
    public static async Task<string> BackupAsync(ProviderConnection connection, byte[] tar, bool success = true)
    {
        string jobId = Guid.NewGuid().ToString(), backupId = Guid.NewGuid().ToString();
        await connection.Backup.JobInitAsync(new JobInitRequest { JobId = jobId, StartTime = Timestamp.FromDateTime(DateTime.UtcNow) });
        bool ok = false;
        try
        {
            string archive = (await connection.Backup.BackupInitAsync(new BackupInitRequest
            {
                JobId = jobId, BackupId = backupId, GuestId = "200", GuestType = GuestType.Container,
                BackupTime = Timestamp.FromDateTime(DateTime.UtcNow),
            })).ArchiveName;
            var mechanism = await connection.Backup.BackupGetMechanismAsync(new BackupGetMechanismRequest
            {
                BackupId = backupId, GuestType = GuestType.Container,
            });
            Assert.Equal(ContainerBackupMechanism.TarStream, mechanism.Container);
            await connection.Backup.BackupContainerPrepareAsync(new BackupContainerPrepareRequest
            {
                BackupId = backupId, Mechanism = ContainerBackupMechanism.TarStream, RootHostUid = 100000, RootHostGid = 100000,
            });
            using (var pipe = new AnonymousPipeServerStream(PipeDirection.Out, System.IO.HandleInheritability.None))
            {
                var refs = await connection.SendFdsAsync([new FdToSend(pipe.ClientSafePipeHandle, FdKind.Pipe)], CancellationToken.None);
                using var call = connection.Backup.BackupContainer(new BackupContainerRequest
                {
                    BackupId = backupId, GuestConfig = ByteString.CopyFrom(Config), Sources = { "." }, TarStream = refs[0],
                });
                pipe.DisposeLocalCopyOfClientHandle();
                Task feed = Task.Run(async () =>
                {
                    await pipe.WriteAsync(tar);
                    pipe.Dispose();
                });
                while (await call.ResponseStream.MoveNext(CancellationToken.None))
                {
                }
                await feed;
            }
            ok = success;
            return archive;
        }
        finally
        {
            await connection.Backup.BackupCleanupAsync(new BackupCleanupRequest { JobId = jobId, BackupId = backupId, Success = ok });
            await connection.Backup.JobCleanupAsync(new JobCleanupRequest { JobId = jobId, Success = ok });
        }
    }

    /// <summary>RestoreContainerInit with the host's channel id; reads the tar the provider passes back.</summary>
    public static async Task<byte[]> RestoreAsync(ProviderConnection connection, string archive)
    {
        string restoreId = Guid.NewGuid().ToString();
        var mechanism = await connection.Restore.RestoreGetMechanismAsync(new RestoreGetMechanismRequest { ArchiveName = archive });
        Assert.Equal(GuestType.Container, mechanism.GuestType);
        Assert.Equal(ContainerRestoreMechanism.Tar, mechanism.Container);
        FdChannel channel = await connection.GetFdChannelAsync(CancellationToken.None);
        try
        {
            var init = await connection.Restore.RestoreContainerInitAsync(new RestoreContainerInitRequest
            {
                RestoreId = restoreId, ArchiveName = archive, FdChannelId = ByteString.CopyFrom(channel.ChannelId.ToByteArray()),
            });
            Assert.Equal(RestoreContainerInitResponse.SourceOneofCase.TarFd, init.SourceCase);
            using PassedFd passed = await connection.ClaimFdAsync(init.TarFd, CancellationToken.None);
            Assert.Equal(FdKind.Pipe, passed.Kind);
            await using var stream = new FileStream(passed.TakeFileHandle(), FileAccess.Read);
            using var copy = new MemoryStream();
            await stream.CopyToAsync(copy);
            return copy.ToArray();
        }
        finally
        {
            await connection.Restore.RestoreContainerCleanupAsync(new RestoreContainerCleanupRequest { RestoreId = restoreId, ArchiveName = archive });
        }
    }
}
