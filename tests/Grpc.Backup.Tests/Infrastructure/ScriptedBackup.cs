using System.Collections.Concurrent;
using Grpc.Backup.Protocol.V1;
using Grpc.Backup.Provider;
using Grpc.Backup.Transport;
using Grpc.Core;

namespace Grpc.Backup.Tests.Infrastructure;

/// <summary>A Backup service that fails, hangs or records exactly as a test asks.</summary>
internal sealed class ScriptedBackup(ProviderFds fds) : Protocol.V1.Backup.BackupBase
{
    /// <summary>How many JobInit calls fail with UNAVAILABLE before one succeeds.</summary>
    public int JobInitFailures;
    /// <summary>When set, JobInit fails with this (a provider that refuses the job).</summary>
    public RpcException? JobInitRefusal;
    public int JobInitCalls;
    public int BackupContainerCalls;
    public int BackupCleanupCalls;

    /// <summary>When set, BackupCleanup always fails with UNAVAILABLE.</summary>
    public bool BackupCleanupAlwaysUnavailable;

    /// <summary>When set, BackupContainer waits until its call is cancelled and records that it saw it.</summary>
    public bool BackupContainerHangs;
    public TaskCompletionSource BackupContainerStarted { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
    public TaskCompletionSource<bool> BackupContainerSawCancellation { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

    /// <summary>When set, BackupVm reads its start, reports one progress and then sends nothing until it is cancelled.</summary>
    public bool BackupVmGoesSilent;

    /// <summary>With <see cref="BackupVmGoesSilent"/>: the device its progress names, instead of the first requested.</summary>
    public string? BackupVmProgressDevice;

    /// <summary>With <see cref="BackupVmGoesSilent"/>: the same progress event is repeated, every 50 ms, instead of silence.</summary>
    public bool BackupVmRepeatsProgress;

    public ConcurrentQueue<DateTime> Deadlines { get; } = new();
    public ConcurrentQueue<string> ReceivedLogs { get; } = new();

    public override Task<JobInitResponse> JobInit(JobInitRequest request, ServerCallContext context)
    {
        Deadlines.Enqueue(context.Deadline);
        Interlocked.Increment(ref JobInitCalls);
        if (JobInitRefusal is { } refusal)
        {
            throw refusal;
        }
        if (Interlocked.Decrement(ref JobInitFailures) >= 0)
        {
            throw new RpcException(new Status(StatusCode.Unavailable, "transient: repository reconnecting"));
        }
        return Task.FromResult(new JobInitResponse());
    }

    public int JobCleanupCalls;

    /// <summary>JobCleanup of any job, known or not, is OK (backup.proto).</summary>
    public override Task<JobCleanupResponse> JobCleanup(JobCleanupRequest request, ServerCallContext context)
    {
        Interlocked.Increment(ref JobCleanupCalls);
        return Task.FromResult(new JobCleanupResponse());
    }

    public override Task<BackupCleanupResponse> BackupCleanup(BackupCleanupRequest request, ServerCallContext context)
    {
        Interlocked.Increment(ref BackupCleanupCalls);
        if (BackupCleanupAlwaysUnavailable)
        {
            throw new RpcException(new Status(StatusCode.Unavailable, "provider backend down"));
        }
        return Task.FromResult(new BackupCleanupResponse { Stats = new BackupStats() });
    }

    public override async Task BackupContainer(BackupContainerRequest request, IServerStreamWriter<BackupContainerEvent> responseStream,
        ServerCallContext context)
    {
        Interlocked.Increment(ref BackupContainerCalls);
        if (!BackupContainerHangs)
        {
            throw new RpcException(new Status(StatusCode.Unavailable, "transient failure in a non-idempotent call"));
        }
        await responseStream.WriteAsync(new BackupContainerEvent { Progress = new Progress { BytesDone = 1 } });
        BackupContainerStarted.TrySetResult();
        try
        {
            await Task.Delay(Timeout.Infinite, context.CancellationToken);
        }
        catch (OperationCanceledException)
        {
            BackupContainerSawCancellation.TrySetResult(true);
            throw;
        }
    }

    public override Task<BackupInitResponse> BackupInit(BackupInitRequest request, ServerCallContext context) =>
        Task.FromResult(new BackupInitResponse { ArchiveName = $"{request.GuestId}/scripted-{request.BackupId[..8]}" });

    public override Task<BackupGetMechanismResponse> BackupGetMechanism(BackupGetMechanismRequest request, ServerCallContext context) =>
        Task.FromResult(new BackupGetMechanismResponse { Vm = VmBackupMechanism.Nbd });

    public override Task<BackupVmQueryIncrementalResponse> BackupVmQueryIncremental(BackupVmQueryIncrementalRequest request, ServerCallContext context) =>
        Task.FromResult(new BackupVmQueryIncrementalResponse());

    public override async Task BackupVm(IAsyncStreamReader<BackupVmRequest> requestStream, IServerStreamWriter<BackupVmEvent> responseStream,
        ServerCallContext context)
    {
        if (!BackupVmGoesSilent || !await requestStream.MoveNext(context.CancellationToken))
        {
            throw new RpcException(new Status(StatusCode.Unimplemented, "scripted: BackupVm not scripted"));
        }
        var stuck = new BackupVmEvent
        {
            Progress = new Progress { DeviceName = BackupVmProgressDevice ?? requestStream.Current.Start.Volumes[0].DeviceName, BytesDone = 1 },
        };
        await responseStream.WriteAsync(stuck);
        while (BackupVmRepeatsProgress)
        {
            await Task.Delay(50, context.CancellationToken);
            await responseStream.WriteAsync(stuck);
        }
        await Task.Delay(Timeout.Infinite, context.CancellationToken);
    }

    public override async Task<BackupHandleLogFileResponse> BackupHandleLogFile(BackupHandleLogFileRequest request, ServerCallContext context)
    {
        using PassedFd passed = await fds.ClaimAsync(request.LogFile, context.CancellationToken);
        using var stream = new FileStream(passed.TakeFileHandle(), FileAccess.Read);
        using var reader = new StreamReader(stream);
        ReceivedLogs.Enqueue(await reader.ReadToEndAsync(context.CancellationToken));
        return new BackupHandleLogFileResponse();
    }
}
