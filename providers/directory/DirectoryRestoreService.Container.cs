using Grpc.Backup.Provider;
using Grpc.Backup.Protocol.V1;
using Grpc.Backup.Providers.Directory.Internal;
using Grpc.Backup.Transport;
using Grpc.Core;
using Microsoft.Win32.SafeHandles;

namespace Grpc.Backup.Providers.Directory;

internal sealed partial class DirectoryRestoreService
{
    /// <summary>Hands the host a read-only fd of the archive's zstd-compressed tar; the host validates and extracts it.</summary>
    public override async Task<RestoreContainerInitResponse> RestoreContainerInit(RestoreContainerInitRequest request, ServerCallContext context)
    {
        if (!ProtocolNames.IsValidOperationId(request.RestoreId))
        {
            throw ContractErrors.InvalidArgument("restore_id must be a UUID in text form");
        }
        ArchiveRef archive = ArchiveStore.Resolve(request.ArchiveName);
        RestoreSession session;
        using (IDisposable guestLock = await locks.AcquireAsync(archive.GuestId, context.CancellationToken))
        {
            (_, ArchiveManifest manifest) = ReadArchive(request.ArchiveName);
            if (manifest.GuestType != ArchiveManifest.GuestTypeContainer || manifest.FindVolume(ContainerBackupRun.TreeDevice) is null)
            {
                throw Protocol.ProviderErrors.Create(StatusCode.FailedPrecondition, $"archive '{archive.Name}' is not a container backup");
            }
            session = restores.GetOrAdd(new RestoreSession(request.RestoreId, archive, manifest, store.CollectChain(archive, manifest)));
        }
        if (session.Archive != archive)
        {
            throw ContractErrors.InvalidArgument($"restore_id '{request.RestoreId}' is already used for archive '{session.Archive.Name}'");
        }
        await session.Gate.WaitAsync(context.CancellationToken);
        try
        {
            if (!session.Exports.TryGetValue(ContainerBackupRun.TreeDevice, out RestoreVolumeExport? export))
            {
                export = new RestoreVolumeExport();
                session.Exports[ContainerBackupRun.TreeDevice] = export;
            }
            SafeFileHandle handle;
            try
            {
                handle = File.OpenHandle(store.FileIn(archive, ContainerBackupRun.TreeFileName), FileMode.Open, FileAccess.Read);
            }
            catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException)
            {
                throw ContractErrors.ArchiveCorrupt(archive.Name, $"{ContainerBackupRun.TreeFileName} is missing");
            }
            export.Keep(handle);
            IReadOnlyList<FdRef> refs = await fds.SendToHostAsync(request.FdChannelId, [new FdToSend(handle, Transport.FdKind.File)],
                context.CancellationToken);
            return new RestoreContainerInitResponse { TarFd = refs[0] };
        }
        finally
        {
            session.Gate.Release();
        }
    }

    public override async Task<RestoreContainerCleanupResponse> RestoreContainerCleanup(RestoreContainerCleanupRequest request, ServerCallContext context)
    {
        await RestoreVmCleanup(new RestoreVmCleanupRequest { RestoreId = request.RestoreId, ArchiveName = request.ArchiveName }, context);
        return new RestoreContainerCleanupResponse();
    }
}
