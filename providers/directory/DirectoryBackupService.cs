using Grpc.Backup.Protocol;
using Grpc.Backup.Protocol.V1;
using Grpc.Backup.Provider;
using Grpc.Backup.Providers.Directory.Internal;
using Grpc.Backup.Transport;
using Grpc.Core;

namespace Grpc.Backup.Providers.Directory;

/// <summary>
/// The Backup service: VM backups over NBD or FILE_HANDLE (<c>--vm-mechanism</c>) into the repository directory (full as sparse raw, incremental as qcow2
/// overlays); container trees as zstd-compressed pax tars (<c>DirectoryBackupService.Container.cs</c>).
/// </summary>
internal sealed partial class DirectoryBackupService(ArchiveStore store, BackupSessionTable sessions, BackupCoordinator coordinator,
    VmBackupRun vmBackup, ContainerBackupRun containerBackup, DirectoryRepositoryOptions options, ProviderFds fds, FencingLedger fencing)
    : Protocol.V1.Backup.BackupBase
{
    /// <summary>A task log is text; anything bigger than this is cut rather than filling the repository.</summary>
    private const long MaxLogBytes = 256L * 1024 * 1024;

    public override async Task<JobInitResponse> JobInit(JobInitRequest request, ServerCallContext context)
    {
        if (!ProtocolNames.IsValidOperationId(request.JobId))
        {
            throw ContractErrors.InvalidArgument("job_id must be a UUID in text form");
        }
        try
        {
            store.CheckWritable();
        }
        catch (Exception e) when (ContractErrors.IsStorageFailure(e))
        {
            throw e.HResult is 28 or 122
                ? ContractErrors.FromStorage(e, "checking the repository")
                : ProviderErrors.Create(ErrorReason.RepositoryUnreachable,
                    $"the repository {store.Root} is not writable: {e.Message}");
        }
        await fencing.AdmitAsync(request.JobId, request.Options, context.CancellationToken);
        sessions.AddJob(request.JobId);
        return new JobInitResponse();
    }

    public override async Task<JobCleanupResponse> JobCleanup(JobCleanupRequest request, ServerCallContext context)
    {
        await coordinator.CleanupJobAsync(request.JobId, context.CancellationToken);
        fencing.Forget(request.JobId);
        return new JobCleanupResponse();
    }

    public override async Task<BackupInitResponse> BackupInit(BackupInitRequest request, ServerCallContext context) =>
        new() { ArchiveName = await coordinator.InitAsync(request, context.CancellationToken) };

    public override async Task<BackupCleanupResponse> BackupCleanup(BackupCleanupRequest request, ServerCallContext context) =>
        new() { Stats = await coordinator.CleanupAsync(request, context.CancellationToken) };

    public override Task<BackupGetMechanismResponse> BackupGetMechanism(BackupGetMechanismRequest request, ServerCallContext context)
    {
        BackupSession session = Find(request.BackupId);
        return request.GuestType switch
        {
            GuestType.Vm when session.GuestType == GuestType.Vm =>
                Task.FromResult(new BackupGetMechanismResponse { Vm = options.VmMechanism }),
            GuestType.Vm or GuestType.Container when request.GuestType != session.GuestType =>
                throw ContractErrors.InvalidArgument($"guest_type {request.GuestType} differs from BackupInit's {session.GuestType}"),
            GuestType.Container => Task.FromResult(ContainerMechanism()),
            _ => throw ContractErrors.InvalidArgument($"guest_type {request.GuestType} is not valid"),
        };
    }

    public override Task<BackupVmQueryIncrementalResponse> BackupVmQueryIncremental(BackupVmQueryIncrementalRequest request,
        ServerCallContext context)
    {
        BackupSession session = Find(request.BackupId);
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
            bool canStack = store.FindIncrementalBase(session.GuestId, volume.DeviceName, (long)volume.SizeBytes) is not null;
            response.Choices.Add(new BackupVmQueryIncrementalResponse.Types.Choice
            {
                DeviceName = volume.DeviceName,
                Choice_ = canStack ? IncrementalChoice.Use : IncrementalChoice.New,
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
            throw ProviderErrors.Create(ErrorReason.MechanismNotSupported,
                $"backup '{start.BackupId}' is not a VM backup");
        }
        await BackupDataCall.RunAsync(session, "BackupVm", token => vmBackup.RunAsync(session, start, requestStream, responseStream, token),
            context.CancellationToken);
    }

    public override async Task<BackupHandleLogFileResponse> BackupHandleLogFile(BackupHandleLogFileRequest request, ServerCallContext context)
    {
        BackupSession session = Find(request.BackupId);
        using PassedFd log = await fds.ClaimAsync(request.LogFile, context.CancellationToken);
        if (log.Kind != Transport.FdKind.File)
        {
            throw ProviderErrors.Create(ErrorReason.FdKindMismatch, "log_file must be a FILE");
        }
        lock (session.Gate)
        {
            if (session.Phase == BackupPhase.Discarded)
            {
                // The archive is gone; the log has nowhere to go and the backup is unaffected.
                return new BackupHandleLogFileResponse();
            }
        }
        using var handle = log.TakeFileHandle();
        try
        {
            await AtomicFile.CopyFromAsync(handle, store.FileIn(session.Archive, ArchiveStore.LogFileName), MaxLogBytes,
                context.CancellationToken);
        }
        catch (Exception e) when (ContractErrors.IsStorageFailure(e))
        {
            throw ContractErrors.FromStorage(e, "storing the task log");
        }
        return new BackupHandleLogFileResponse();
    }

    private BackupSession Find(string backupId) =>
        sessions.TryGet(backupId, out BackupSession? session) ? session : throw ContractErrors.UnknownBackup(backupId);
}
