using Grpc.Backup.Host;
using Grpc.Backup.Management.V1;
using Grpc.Backup.Orchestrator;
using Grpc.Backup.Orchestrator.Inventory;
using Grpc.Backup.Service.Internal.Configuration;
using Grpc.Backup.Service.Internal.Tasks;
using Microsoft.Extensions.Logging;

namespace Grpc.Backup.Service.Internal.Engine;

/// <summary>Restores as tasks: the VM restore runner against one storage, watched like a backup.</summary>
internal sealed partial class JobEngine
{
    public ServiceTask StartRestore(StorageConfig storage, string archive, string target, DiskFormat format, ulong bandwidthLimit)
    {
        ServiceTask task = tasks.Add(new ServiceTask("restore", "", storage.Name));
        _ = Task.Run(() => RestoreAsync(task, storage, archive, target, format, bandwidthLimit));
        return task;
    }

    private async Task RestoreAsync(ServiceTask task, StorageConfig storage, string archive, string target, DiskFormat format, ulong bandwidthLimit)
    {
        catalog.RunStarted(task.Id, task.Kind, "", storage.Name, task.Created);
        PublishRun(task.Id);
        string error = "";
        TaskState state = TaskState.Succeeded;
        try
        {
            task.SetRunning();
            task.Log("INFO", "", $"restoring {archive} from {storage.Name} into {target}");
            await using ProviderConnection provider = await ProviderConnection.ConnectAsync(storage.Endpoint, loggerFactory: loggerFactory,
                cancellationToken: task.Cancellation);
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
