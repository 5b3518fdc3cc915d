using Grpc.Backup.Host;
using Grpc.Backup.Management.V1;
using Grpc.Backup.Orchestrator;
using Grpc.Backup.Orchestrator.Inventory;
using Grpc.Backup.Service.Internal.Configuration;
using Grpc.Backup.Service.Internal.Tasks;
using Microsoft.Extensions.Logging;

namespace Grpc.Backup.Service.Internal.Engine;

/// <summary>
/// Restores as tasks: the VM restore runner against one storage, watched like a backup; a live restore starts the VM
/// through the caller's guest start program and reports each disk's stream as the task's progress.
/// </summary>
internal sealed partial class JobEngine
{
    /// <summary>How often a live restore's task reports its streams (progress events; a log line every tenth).</summary>
    private static readonly TimeSpan LiveProgressInterval = TimeSpan.FromSeconds(1);

    public ServiceTask StartLiveRestore(StorageConfig storage, string archive, string target, ulong bandwidthLimit, GuestStartProgram startProgram)
    {
        ServiceTask task = tasks.Add(new ServiceTask("restore", "", storage.Name));
        _ = Task.Run(() => RunRestoreTaskAsync(task, storage, $"restoring {archive} live from {storage.Name} into {target}", async provider =>
        {
            var runner = new LiveRestoreRunner(provider, new TaskLogger<LiveRestoreRunner>(task, "", loggerFactory.CreateLogger<LiveRestoreRunner>()));
            await using LiveRestoreSession session = await runner.StartAsync(archive, new LiveRestoreOptions
            {
                TargetDirectory = target,
                BandwidthLimit = bandwidthLimit,
            }, (guest, token) => startProgram.StartAsync(guest, target, token), task.Cancellation);
            task.Log("INFO", "", $"the guest runs on {string.Join(", ", session.Disks.Select(d => d.ImagePath))}; streaming");
            int reports = 0;
            try
            {
                await session.WaitAsync(LiveProgressInterval, progress =>
                {
                    foreach (LiveRestoreDiskProgress disk in progress.Disks)
                    {
                        task.Progress("", disk.DeviceName, (ulong)disk.BytesDone, (ulong)disk.BytesTotal);
                    }
                    if (reports++ % 10 == 0 || progress.DisksDone == progress.Disks.Count)
                    {
                        task.Log("INFO", "", progress.Describe());
                    }
                    return Task.CompletedTask;
                }, task.Cancellation);
            }
            catch (OperationCanceledException) when (task.Cancellation.IsCancellationRequested)
            {
                task.Log("WARN", "", "cancelled: the VM is paused; each unfinished disk keeps what streamed and what the guest wrote, "
                    + "and still names its (now gone) export as backing; the completed disks are whole");
                throw;
            }
            task.Log("INFO", "", "every disk is independent of the provider");
        }));
        return task;
    }

    public ServiceTask StartRestore(StorageConfig storage, string archive, string target, DiskFormat format, ulong bandwidthLimit)
    {
        ServiceTask task = tasks.Add(new ServiceTask("restore", "", storage.Name));
        _ = Task.Run(() => RunRestoreTaskAsync(task, storage, $"restoring {archive} from {storage.Name} into {target}", async provider =>
        {
            var runner = new VmRestoreRunner(provider, new TaskLogger<VmRestoreRunner>(task, "", loggerFactory.CreateLogger<VmRestoreRunner>()));
            VmRestoreResult restored = await runner.RestoreAsync(archive, new VmRestoreOptions
            {
                TargetDirectory = target,
                TargetFormat = format,
                BandwidthLimit = bandwidthLimit,
                ProviderInactivityTimeout = config.Host.ProviderInactivityTimeout,
            }, task.Cancellation);
            foreach (var (device, path) in restored.Disks)
            {
                task.Log("INFO", "", $"restored {device}: {path}");
            }
        }));
        return task;
    }

    /// <summary>One restore task's frame: catalog run, provider connection, the end's state (cancelled or failed).</summary>
    private async Task RunRestoreTaskAsync(ServiceTask task, StorageConfig storage, string start, Func<ProviderConnection, Task> restore)
    {
        catalog.RunStarted(task.Id, task.Kind, "", storage.Name, task.Created);
        PublishRun(task.Id);
        string error = "";
        TaskState state = TaskState.Succeeded;
        try
        {
            task.SetRunning();
            task.Log("INFO", "", start);
            await using ProviderConnection provider = await ProviderConnection.ConnectAsync(storage.Endpoint, loggerFactory: loggerFactory,
                cancellationToken: task.Cancellation);
            await restore(provider);
        }
        catch (Exception e)
        {
            error = Describe(e);
            state = task.Cancellation.IsCancellationRequested ? TaskState.Cancelled : TaskState.Failed;
            task.Log("ERROR", "", $"restore failed: {error}");
        }
        catalog.RunEnded(task.Id, StateName(state), error, DateTime.UtcNow);
        PublishRun(task.Id);
        retention.Apply();
        task.End(state, error);
    }
}
