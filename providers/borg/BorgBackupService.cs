using Grpc.Backup.Protocol;
using Grpc.Backup.Protocol.V1;
using Grpc.Backup.Provider;
using Grpc.Backup.Providers.Borg.Internal;
using Grpc.Core;

namespace Grpc.Backup.Providers.Borg;

/// <summary>
/// The Backup service: VM backups (NBD or FILE_HANDLE) and container backups (TAR_STREAM) into borg archives, one
/// archive per guest backup. JobInit opens the repository, so a wrong passphrase, an unreachable repository or a
/// stale lock fails the job before any guest is touched.
/// </summary>
internal sealed class BorgBackupService(BorgRepository repository, BackupSessionTable sessions, BackupFinisher finisher,
    VmBackupRun vmBackup, ContainerBackupRun containerBackup, Catalog catalog, ProviderFds fds, BorgProviderOptions options)
    : Protocol.V1.Backup.BackupBase
{
    public override async Task<JobInitResponse> JobInit(JobInitRequest request, ServerCallContext context)
    {
        if (!ProtocolNames.IsValidOperationId(request.JobId))
        {
            throw ContractErrors.InvalidArgument("job_id must be a UUID in text form");
        }
        IReadOnlySet<string> archives;
        try
        {
            archives = await repository.OpenAsync(context.CancellationToken);
        }
        catch (BorgException e)
        {
            throw BorgErrors.From(e, $"opening the repository {options.Repository}");
        }
        sessions.AddJob(request.JobId, archives);
        return new JobInitResponse();
    }

    public override async Task<JobCleanupResponse> JobCleanup(JobCleanupRequest request, ServerCallContext context)
    {
        await finisher.CleanupJobAsync(request.JobId, context.CancellationToken);
        return new JobCleanupResponse();
    }

    public override async Task<BackupInitResponse> BackupInit(BackupInitRequest request, ServerCallContext context) =>
        new() { ArchiveName = await finisher.InitAsync(request, context.CancellationToken) };

    public override async Task<BackupCleanupResponse> BackupCleanup(BackupCleanupRequest request, ServerCallContext context) =>
        new() { Stats = await finisher.CleanupAsync(request, context.CancellationToken) };

    public override Task<BackupGetMechanismResponse> BackupGetMechanism(BackupGetMechanismRequest request, ServerCallContext context)
    {
        BackupSession session = Find(request.BackupId);
        if (request.GuestType != session.GuestType)
        {
            throw ContractErrors.InvalidArgument($"guest_type {request.GuestType} differs from BackupInit's {session.GuestType}");
        }
        return Task.FromResult(session.GuestType == GuestType.Vm
            ? new BackupGetMechanismResponse { Vm = options.VmMechanism }
            : new BackupGetMechanismResponse { Container = ContainerBackupMechanism.TarStream });
    }

    public override Task<BackupVmQueryIncrementalResponse> BackupVmQueryIncremental(BackupVmQueryIncrementalRequest request,
        ServerCallContext context)
    {
        BackupSession session = Find(request.BackupId);
        IncrementalState state = catalog.ReadIncremental(session.GuestId);
        IReadOnlySet<string> archives = sessions.ArchivesAtJobStart(session.JobId);
        var response = new BackupVmQueryIncrementalResponse();
        var devices = new HashSet<string>(StringComparer.Ordinal);
        foreach (VolumeSize volume in request.Volumes)
        {
            if (!DeviceName.IsValid(volume.DeviceName) || !devices.Add(volume.DeviceName))
            {
                throw ContractErrors.InvalidArgument($"device name '{volume.DeviceName}' is invalid or listed twice");
            }
            if (volume.SizeBytes == 0 || volume.SizeBytes > long.MaxValue)
            {
                throw ContractErrors.InvalidArgument($"device {volume.DeviceName} has the invalid size {volume.SizeBytes}");
            }
            bool usable = false;
            if (state.Devices.TryGetValue(volume.DeviceName, out IncrementalBase? last) && last.SizeBytes == (long)volume.SizeBytes)
            {
                // USE only when the archive the bitmap counts from is still there to supply the clean ranges.
                usable = archives.Contains(last.BorgName);
            }
            response.Choices.Add(new BackupVmQueryIncrementalResponse.Types.Choice
            {
                DeviceName = volume.DeviceName,
                Choice_ = usable ? IncrementalChoice.Use : IncrementalChoice.New,
            });
        }
        return Task.FromResult(response);
    }

    public override async Task BackupVm(IAsyncStreamReader<BackupVmRequest> requestStream, IServerStreamWriter<BackupVmEvent> responseStream,
        ServerCallContext context)
    {
        if (!await requestStream.MoveNext(context.CancellationToken) || requestStream.Current.MessageCase != BackupVmRequest.MessageOneofCase.Start)
        {
            throw ContractErrors.InvalidArgument("the first BackupVm message must be `start`");
        }
        BackupVmStart start = requestStream.Current.Start;
        BackupSession session = Find(start.BackupId);
        if (session.GuestType != GuestType.Vm)
        {
            throw ProviderErrors.Create(ErrorReason.MechanismNotSupported, $"backup '{start.BackupId}' is not a VM backup");
        }
        await BackupDataCall.RunAsync(session, "BackupVm", token => vmBackup.RunAsync(session, start, requestStream, responseStream, token),
            context.CancellationToken);
    }

    public override Task<BackupContainerPrepareResponse> BackupContainerPrepare(BackupContainerPrepareRequest request, ServerCallContext context)
    {
        BackupSession session = Find(request.BackupId);
        if (session.GuestType != GuestType.Container)
        {
            throw ProviderErrors.Create(ErrorReason.MechanismNotSupported, $"backup '{request.BackupId}' is not a container backup");
        }
        if (request.Mechanism != ContainerBackupMechanism.TarStream)
        {
            throw ProviderErrors.Create(ErrorReason.MechanismNotSupported, "this provider receives containers as TAR_STREAM only");
        }
        // Nothing to prepare: the tar stream arrives on a pipe, and borg runs as the provider's own user.
        return Task.FromResult(new BackupContainerPrepareResponse());
    }

    public override async Task BackupContainer(BackupContainerRequest request, IServerStreamWriter<BackupContainerEvent> responseStream,
        ServerCallContext context)
    {
        BackupSession session = Find(request.BackupId);
        if (session.GuestType != GuestType.Container)
        {
            throw ProviderErrors.Create(ErrorReason.MechanismNotSupported, $"backup '{request.BackupId}' is not a container backup");
        }
        await BackupDataCall.RunAsync(session, "BackupContainer", token => containerBackup.RunAsync(session, request, responseStream, token),
            context.CancellationToken);
    }

    public override async Task<BackupHandleLogFileResponse> BackupHandleLogFile(BackupHandleLogFileRequest request, ServerCallContext context)
    {
        BackupSession session = Find(request.BackupId);
        using Transport.PassedFd log = await fds.ClaimAsync(request.LogFile, context.CancellationToken);
        if (log.Kind != Transport.FdKind.File)
        {
            throw ProviderErrors.Create(ErrorReason.FdKindMismatch, "log_file must be a FILE");
        }
        using var handle = log.TakeFileHandle();
        try
        {
            // The log goes to the catalog: the archive is already written, and a borg archive cannot grow a member.
            await catalog.StoreLogAsync(session.Archive, handle, context.CancellationToken);
        }
        catch (Exception e) when (ContractErrors.IsStorageFailure(e))
        {
            throw BorgErrors.FromState(e, "storing the task log");
        }
        return new BackupHandleLogFileResponse();
    }

    private BackupSession Find(string backupId) =>
        sessions.TryGet(backupId, out BackupSession? session) ? session : throw ContractErrors.UnknownBackup(backupId);
}
