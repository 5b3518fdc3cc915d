using System.IO.Pipes;
using Google.Protobuf;
using Grpc.Backup.Protocol;
using Grpc.Backup.Protocol.V1;
using Grpc.Backup.Provider;
using Grpc.Backup.Providers.Borg.Internal;
using Grpc.Backup.Transport;
using Grpc.Core;
using Microsoft.Win32.SafeHandles;

namespace Grpc.Backup.Providers.Borg;

/// <summary>
/// The Restore service. A VM volume is extracted from its archive into an unlinked sparse scratch file and handed to
/// the host as a read-only fd (QEMU_IMG): every archive holds whole images, so no chain is resolved at restore time.
/// A container archive goes to the host as the read end of <c>borg export-tar</c>'s stdout (TAR). The configurations
/// come from the archive's metadata, byte-exact.
/// </summary>
internal sealed class BorgRestoreService(BorgRepository repository, RestoreSessionTable restores, ProviderFds fds, BorgProviderOptions options)
    : Restore.RestoreBase
{
    public override async Task<RestoreGetMechanismResponse> RestoreGetMechanism(RestoreGetMechanismRequest request, ServerCallContext context)
    {
        (_, CatalogEntry entry) = await DescribeAsync(request.ArchiveName, context.CancellationToken);
        return entry.Metadata.GuestType == ArchiveMetadata.GuestTypeVm
            ? new RestoreGetMechanismResponse { GuestType = GuestType.Vm, Vm = VmRestoreMechanism.QemuImg }
            : new RestoreGetMechanismResponse { GuestType = GuestType.Container, Container = ContainerRestoreMechanism.Tar };
    }

    public override async Task<ArchiveGetGuestConfigResponse> ArchiveGetGuestConfig(ArchiveGetGuestConfigRequest request, ServerCallContext context)
    {
        (_, CatalogEntry entry) = await DescribeAsync(request.ArchiveName, context.CancellationToken);
        return new ArchiveGetGuestConfigResponse { GuestConfig = ByteString.CopyFrom(entry.Metadata.GuestConfig) };
    }

    public override async Task<ArchiveGetFirewallConfigResponse> ArchiveGetFirewallConfig(ArchiveGetFirewallConfigRequest request,
        ServerCallContext context)
    {
        (_, CatalogEntry entry) = await DescribeAsync(request.ArchiveName, context.CancellationToken);
        return entry.Metadata.FirewallConfig is { } firewall
            ? new ArchiveGetFirewallConfigResponse { Present = true, FirewallConfig = ByteString.CopyFrom(firewall) }
            : new ArchiveGetFirewallConfigResponse { Present = false };
    }

    public override async Task<RestoreVmInitResponse> RestoreVmInit(RestoreVmInitRequest request, ServerCallContext context)
    {
        RestoreSession session = await OpenAsync(request.RestoreId, request.ArchiveName, ArchiveMetadata.GuestTypeVm, context.CancellationToken);
        var response = new RestoreVmInitResponse();
        foreach (VolumeMetadata volume in session.Entry.Metadata.Volumes)
        {
            response.Volumes.Add(new VolumeSize { DeviceName = volume.Device, SizeBytes = (ulong)volume.SizeBytes });
        }
        return response;
    }

    public override async Task<RestoreVmVolumeInitResponse> RestoreVmVolumeInit(RestoreVmVolumeInitRequest request, ServerCallContext context)
    {
        RestoreSession session = Find(request.RestoreId, request.ArchiveName);
        VolumeMetadata volume = session.Entry.Metadata.FindVolume(request.DeviceName)
            ?? throw ContractErrors.InvalidArgument($"archive '{session.Archive.Name}' has no device '{request.DeviceName}'");
        await session.Gate.WaitAsync(context.CancellationToken);
        try
        {
            if (session.Volumes.Remove(volume.Device, out IDisposable? previous))
            {
                previous.Dispose();
            }
            SafeFileHandle image = await ImageExtractor.ExtractAsync(repository, session.Archive, volume, options.ScratchDirectory,
                new BandwidthThrottle(request.BandwidthLimit?.BytesPerSecond ?? 0), context.CancellationToken);
            session.Volumes[volume.Device] = image;
            IReadOnlyList<FdRef> refs = await fds.SendToHostAsync(request.FdChannelId, [new FdToSend(image, Transport.FdKind.File)],
                context.CancellationToken);
            return new RestoreVmVolumeInitResponse { Fd = refs[0] };
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
                if (session.Volumes.Remove(request.DeviceName, out IDisposable? image))
                {
                    image.Dispose();
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
        await ReleaseAsync(request.RestoreId);
        return new RestoreVmCleanupResponse();
    }

    public override async Task<RestoreContainerInitResponse> RestoreContainerInit(RestoreContainerInitRequest request, ServerCallContext context)
    {
        RestoreSession session = await OpenAsync(request.RestoreId, request.ArchiveName, ArchiveMetadata.GuestTypeContainer,
            context.CancellationToken);
        await session.Gate.WaitAsync(context.CancellationToken);
        try
        {
            if (session.ExportTar is { } earlier)
            {
                session.ExportTar = null;
                await earlier.DisposeAsync();
            }
            BorgProcess export = repository.StartExportTar(session.Archive.BorgName);
            session.ExportTar = export;
            // The host reads the tar straight from borg's stdout; borg's failure shows as a cut stream there.
            SafePipeHandle pipe = ((AnonymousPipeClientStream)export.StandardOutput).SafePipeHandle;
            IReadOnlyList<FdRef> refs = await fds.SendToHostAsync(request.FdChannelId, [new FdToSend(pipe, Transport.FdKind.Pipe)],
                context.CancellationToken);
            return new RestoreContainerInitResponse { TarFd = refs[0] };
        }
        finally
        {
            session.Gate.Release();
        }
    }

    public override async Task<RestoreContainerCleanupResponse> RestoreContainerCleanup(RestoreContainerCleanupRequest request,
        ServerCallContext context)
    {
        await ReleaseAsync(request.RestoreId);
        return new RestoreContainerCleanupResponse();
    }

    private async Task ReleaseAsync(string restoreId)
    {
        if (restores.TryRemove(restoreId, out RestoreSession? session))
        {
            await session.Gate.WaitAsync(CancellationToken.None);
            try
            {
                await session.ReleaseAsync();
            }
            finally
            {
                session.Gate.Release();
            }
        }
    }

    private async Task<RestoreSession> OpenAsync(string restoreId, string archiveName, string guestType, CancellationToken cancellationToken)
    {
        if (!ProtocolNames.IsValidOperationId(restoreId))
        {
            throw ContractErrors.InvalidArgument("restore_id must be a UUID in text form");
        }
        (BorgArchiveName archive, CatalogEntry entry) = await DescribeAsync(archiveName, cancellationToken);
        if (entry.Metadata.GuestType != guestType)
        {
            throw ProviderErrors.Create(StatusCode.FailedPrecondition, $"archive '{archive.Name}' is a {entry.Metadata.GuestType} backup");
        }
        RestoreSession session = restores.GetOrAdd(new RestoreSession(restoreId, archive, entry));
        return session.Archive == archive
            ? session
            : throw ContractErrors.InvalidArgument($"restore_id '{restoreId}' is already used for archive '{session.Archive.Name}'");
    }

    private RestoreSession Find(string restoreId, string archiveName)
    {
        BorgArchiveName archive = BorgArchiveName.Resolve(archiveName);
        if (!restores.TryGet(restoreId, out RestoreSession? session))
        {
            throw ContractErrors.UnknownRestore(restoreId);
        }
        return session.Archive == archive
            ? session
            : throw ContractErrors.InvalidArgument($"restore '{restoreId}' is for archive '{session.Archive.Name}'");
    }

    private async Task<(BorgArchiveName, CatalogEntry)> DescribeAsync(string archiveName, CancellationToken cancellationToken)
    {
        BorgArchiveName archive = BorgArchiveName.Resolve(archiveName);
        try
        {
            CatalogEntry entry = await repository.DescribeAsync(archive, null, cancellationToken) ?? throw ContractErrors.ArchiveNotFound(archive.Name);
            return (archive, entry);
        }
        catch (BorgException e)
        {
            throw BorgErrors.From(e, $"reading archive '{archive.Name}'");
        }
    }
}
