using Grpc.Backup.Protocol.V1;
using Grpc.Backup.Provider;
using Grpc.Backup.Providers.Directory.Internal;
using Grpc.Backup.Transport;
using Grpc.Core;
using Microsoft.Win32.SafeHandles;

namespace Grpc.Backup.Providers.Directory;

/// <summary>
/// The Restore service for VM archives (mechanism QEMU_IMG). A full image goes to the host as a read-only fd of the
/// raw file; an incremental one as a connected socket to a private, read-only qemu-nbd that resolves the qcow2 chain,
/// so the host always reads plain raw data and never parses an image format from the repository.
/// </summary>
internal sealed partial class DirectoryRestoreService(ArchiveStore store, GuestLocks locks, RestoreSessionTable restores, QemuTools tools,
    ProviderFds fds) : Restore.RestoreBase
{
    public override Task<RestoreGetMechanismResponse> RestoreGetMechanism(RestoreGetMechanismRequest request, ServerCallContext context)
    {
        (_, ArchiveManifest manifest) = ReadArchive(request.ArchiveName);
        return Task.FromResult(manifest.GuestType switch
        {
            ArchiveManifest.GuestTypeVm => new RestoreGetMechanismResponse { GuestType = GuestType.Vm, Vm = VmRestoreMechanism.QemuImg },
            ArchiveManifest.GuestTypeContainer => new RestoreGetMechanismResponse { GuestType = GuestType.Container, Container = ContainerRestoreMechanism.Tar },
            _ => throw ContractErrors.ArchiveCorrupt(request.ArchiveName, $"it holds a guest of type '{manifest.GuestType}'"),
        });
    }

    public override Task<ArchiveGetGuestConfigResponse> ArchiveGetGuestConfig(ArchiveGetGuestConfigRequest request, ServerCallContext context)
    {
        (ArchiveRef archive, _) = ReadArchive(request.ArchiveName);
        byte[] config = ReadArchiveFile(archive, ArchiveStore.GuestConfigFileName)
            ?? throw ContractErrors.ArchiveCorrupt(archive.Name, "guest.conf is missing");
        return Task.FromResult(new ArchiveGetGuestConfigResponse { GuestConfig = Google.Protobuf.ByteString.CopyFrom(config) });
    }

    public override Task<ArchiveGetFirewallConfigResponse> ArchiveGetFirewallConfig(ArchiveGetFirewallConfigRequest request,
        ServerCallContext context)
    {
        (ArchiveRef archive, ArchiveManifest manifest) = ReadArchive(request.ArchiveName);
        if (!manifest.HasFirewallConfig)
        {
            return Task.FromResult(new ArchiveGetFirewallConfigResponse { Present = false });
        }
        byte[] config = ReadArchiveFile(archive, ArchiveStore.FirewallConfigFileName)
            ?? throw ContractErrors.ArchiveCorrupt(archive.Name, "firewall.conf is missing");
        return Task.FromResult(new ArchiveGetFirewallConfigResponse { Present = true, FirewallConfig = Google.Protobuf.ByteString.CopyFrom(config) });
    }

    public override async Task<RestoreVmInitResponse> RestoreVmInit(RestoreVmInitRequest request, ServerCallContext context)
    {
        if (!ProtocolNames.IsValidOperationId(request.RestoreId))
        {
            throw ContractErrors.InvalidArgument("restore_id must be a UUID in text form");
        }
        ArchiveRef archive = ArchiveStore.Resolve(request.ArchiveName);
        RestoreSession session;
        if (restores.TryGet(request.RestoreId, out RestoreSession? known))
        {
            session = known;
        }
        else
        {
            // Under the guest's lock, so a delete either sees this restore's pins or has finished before we read.
            using IDisposable guestLock = await locks.AcquireAsync(archive.GuestId, context.CancellationToken);
            (_, ArchiveManifest manifest) = ReadArchive(request.ArchiveName);
            if (manifest.GuestType != ArchiveManifest.GuestTypeVm)
            {
                throw Grpc.Backup.Protocol.ProviderErrors.Create(StatusCode.FailedPrecondition, $"archive '{archive.Name}' is not a VM backup");
            }
            session = restores.GetOrAdd(new RestoreSession(request.RestoreId, archive, manifest, store.CollectChain(archive, manifest)));
        }
        if (session.Archive != archive)
        {
            throw ContractErrors.InvalidArgument($"restore_id '{request.RestoreId}' is already used for archive '{session.Archive.Name}'");
        }
        var response = new RestoreVmInitResponse();
        foreach (ManifestVolume volume in session.Manifest.Volumes)
        {
            response.Volumes.Add(new VolumeSize { DeviceName = volume.Device, SizeBytes = (ulong)volume.SizeBytes });
        }
        return response;
    }

    public override async Task<RestoreVmVolumeInitResponse> RestoreVmVolumeInit(RestoreVmVolumeInitRequest request, ServerCallContext context)
    {
        ArchiveRef archive = ArchiveStore.Resolve(request.ArchiveName);
        if (!restores.TryGet(request.RestoreId, out RestoreSession? session))
        {
            throw ContractErrors.UnknownRestore(request.RestoreId);
        }
        if (session.Archive != archive)
        {
            throw ContractErrors.InvalidArgument($"restore '{request.RestoreId}' is for archive '{session.Archive.Name}'");
        }
        ManifestVolume volume = session.Manifest.FindVolume(request.DeviceName)
            ?? throw ContractErrors.InvalidArgument($"archive '{archive.Name}' has no device '{request.DeviceName}'");
        string image = store.FileIn(archive, volume.File);
        if (!File.Exists(image))
        {
            throw ContractErrors.ArchiveNotFound(archive.Name);
        }

        await session.Gate.WaitAsync(context.CancellationToken);
        try
        {
            if (!session.Exports.TryGetValue(volume.Device, out RestoreVolumeExport? export))
            {
                export = new RestoreVolumeExport();
                session.Exports[volume.Device] = export;
            }
            return volume.Format == ManifestVolume.FormatRaw
                ? await SendRawFileAsync(request, export, image, context.CancellationToken)
                : await SendQcow2ChainAsync(request, archive, volume, export, image, context.CancellationToken);
        }
        finally
        {
            session.Gate.Release();
        }
    }

    public override async Task<RestoreVmVolumeCleanupResponse> RestoreVmVolumeCleanup(RestoreVmVolumeCleanupRequest request,
        ServerCallContext context)
    {
        if (restores.TryGet(request.RestoreId, out RestoreSession? session))
        {
            await session.Gate.WaitAsync(context.CancellationToken);
            try
            {
                if (session.Exports.Remove(request.DeviceName, out RestoreVolumeExport? export))
                {
                    await export.DisposeAsync();
                }
            }
            finally
            {
                session.Gate.Release();
            }
        }
        return new RestoreVmVolumeCleanupResponse();
    }

    public override async Task<RestoreVmCleanupResponse> RestoreVmCleanup(RestoreVmCleanupRequest request, ServerCallContext context)
    {
        if (restores.TryRemove(request.RestoreId, out RestoreSession? session))
        {
            await session.Gate.WaitAsync(CancellationToken.None);
            try
            {
                foreach (RestoreVolumeExport export in session.Exports.Values)
                {
                    await export.DisposeAsync();
                }
                session.Exports.Clear();
            }
            finally
            {
                session.Gate.Release();
            }
        }
        return new RestoreVmCleanupResponse();
    }

    private async Task<RestoreVmVolumeInitResponse> SendRawFileAsync(RestoreVmVolumeInitRequest request, RestoreVolumeExport export,
        string image, CancellationToken cancellationToken)
    {
        // A plain file only: a symlink planted in a tampered repository would hand the host whatever it points at.
        if (new FileInfo(image).LinkTarget is not null)
        {
            throw ContractErrors.ArchiveCorrupt(request.ArchiveName, $"{Path.GetFileName(image)} is a symlink, not a plain file");
        }
        SafeFileHandle handle = File.OpenHandle(image, FileMode.Open, FileAccess.Read);
        export.Keep(handle);
        if (PassedFileInfo.Get(handle).Kind != Transport.FdKind.File)
        {
            throw ContractErrors.ArchiveCorrupt(request.ArchiveName, $"{Path.GetFileName(image)} is not a regular file");
        }
        IReadOnlyList<FdRef> refs = await fds.SendToHostAsync(request.FdChannelId, [new FdToSend(handle, Transport.FdKind.File)],
            cancellationToken);
        return new RestoreVmVolumeInitResponse { Fd = refs[0] };
    }

    private async Task<RestoreVmVolumeInitResponse> SendQcow2ChainAsync(RestoreVmVolumeInitRequest request, ArchiveRef archive,
        ManifestVolume volume, RestoreVolumeExport export, string image, CancellationToken cancellationToken)
    {
        if (export.Server is null)
        {
            QemuImageChain chain = await CheckChainAsync(archive, volume, image, cancellationToken);
            // Every link named with the file driver: qemu-nbd follows nothing a (tampered) header says.
            export.Server = await QemuNbdServer.StartAsync(tools.QemuNbdPath, tools.RuntimeDirectory,
                ["-r", "--persistent", "--shared=4"], volume.Device, chain.ImageSpec(), cancellationToken, workingDirectory: "/");
        }
        System.Net.Sockets.Socket socket = await export.Server.ConnectAsync(cancellationToken);
        export.Keep(socket);
        IReadOnlyList<FdRef> refs = await fds.SendToHostAsync(request.FdChannelId,
            [new FdToSend(socket.SafeHandle, Transport.FdKind.NbdSocket)], cancellationToken);
        return new RestoreVmVolumeInitResponse { Fd = refs[0], NbdExportName = volume.Device };
    }

    /// <summary>
    /// The chain qemu-nbd is about to open must be plain files inside the guest's directory of the repository, of the
    /// size the manifest records: a backing name in a tampered image (a host path, <c>blkdebug::</c>, <c>json:</c>, an
    /// NBD socket) must not make the provider serve anything else to the host, and a tiny image must not declare a
    /// disk its archive never held.
    /// </summary>
    private async Task<QemuImageChain> CheckChainAsync(ArchiveRef archive, ManifestVolume volume, string image, CancellationToken cancellationToken)
    {
        try
        {
            return await QemuImageChain.ReadAsync(tools.QemuImgPath, image, ManifestVolume.FormatQcow2, store.GuestDirectory(archive.GuestId),
                volume.SizeBytes, cancellationToken);
        }
        catch (InvalidDataException e)
        {
            throw ContractErrors.ArchiveCorrupt(archive.Name, e.Message);
        }
    }

    private (ArchiveRef Archive, ArchiveManifest Manifest) ReadArchive(string name)
    {
        ArchiveRef archive = ArchiveStore.Resolve(name);
        try
        {
            return (archive, store.ReadComplete(archive));
        }
        catch (Exception e) when (ContractErrors.IsStorageFailure(e))
        {
            throw ContractErrors.FromStorage(e, $"reading archive '{archive.Name}'");
        }
    }

    private byte[]? ReadArchiveFile(ArchiveRef archive, string fileName)
    {
        try
        {
            return File.ReadAllBytes(store.FileIn(archive, fileName));
        }
        catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException)
        {
            return null;
        }
        catch (Exception e) when (ContractErrors.IsStorageFailure(e))
        {
            throw ContractErrors.FromStorage(e, $"reading archive '{archive.Name}'");
        }
    }
}
