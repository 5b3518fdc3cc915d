using Grpc.Backup.Protocol;
using Grpc.Backup.Protocol.V1;
using Grpc.Core;

namespace Grpc.Backup.Provider;

/// <summary>
/// The one data call of a backup (BackupVm or BackupContainer): it may run once, BackupCleanup can stop it
/// (<see cref="IBackupDataState.Abort"/>) and wait for it (<see cref="IBackupDataState.Running"/>), and its outcome
/// (DataStored or DataFailed) decides what BackupCleanup commits.
/// </summary>
public static class BackupDataCall
{
    public static async Task RunAsync(IBackupDataState state, string call, Func<CancellationToken, Task> run, CancellationToken callCancelled)
    {
        ArgumentNullException.ThrowIfNull(state);
        ArgumentNullException.ThrowIfNull(run);
        var done = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        lock (state.Gate)
        {
            if (state.Phase != BackupPhase.Initialized)
            {
                throw ProviderErrors.Create(ErrorReason.OperationInProgress,
                    $"{call} already ran for backup '{state.BackupId}' (state {state.Phase}); start a new backup");
            }
            state.Phase = BackupPhase.Running;
            state.Running = done.Task;
        }
        using var cancellation = CancellationTokenSource.CreateLinkedTokenSource(callCancelled, state.Abort.Token);
        bool stored = false;
        try
        {
            await run(cancellation.Token);
            stored = true;
        }
        catch (OperationCanceledException) when (state.Abort.IsCancellationRequested && !callCancelled.IsCancellationRequested)
        {
            throw ProviderErrors.Create(StatusCode.Aborted, $"the backup was cleaned up while {call} was running");
        }
        finally
        {
            lock (state.Gate)
            {
                state.Phase = stored ? BackupPhase.DataStored : BackupPhase.DataFailed;
            }
            done.SetResult();
        }
    }
}
