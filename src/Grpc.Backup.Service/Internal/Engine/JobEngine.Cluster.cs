using Grpc.Backup.Cluster;
using Grpc.Backup.Host;
using Grpc.Backup.Orchestrator;
using Grpc.Backup.Protocol;
using Grpc.Backup.Service.Internal.Configuration;
using Grpc.Backup.Service.Internal.Tasks;

namespace Grpc.Backup.Service.Internal.Engine;

/// <summary>A guest's backup in a cluster: its etcd slot and the provider job that carries the slot's fencing token.</summary>
internal sealed partial class JobEngine
{
    private async Task<(ClusterSlot Slot, JobSession Job)> StartClusterJobAsync(ServiceTask task, BackupPlan plan, ProviderConnection provider,
        ConfiguredGuest guest, CancellationToken cancellationToken)
    {
        ClusterSlot slot = await cluster!.AcquireSlotAsync(plan.Storage, cancellationToken);
        try
        {
            task.Log("INFO", guest.Id, $"cluster slot {slot.SlotName} (fencing token {slot.Revision}){(slot.HostSlot is { } host ? $", host slot {host.SlotName}" : "")}");
            var options = new Dictionary<string, string>(plan.Storage.Options, StringComparer.Ordinal)
            {
                [FencingToken.OptionName] = slot.FencingToken.ToString(),
            };
            JobSession job = await JobSession.StartAsync(provider, Guid.NewGuid().ToString(), options, m => task.Log("WARN", guest.Id, m), cancellationToken);
            return (slot, job);
        }
        catch
        {
            await ReleaseQuietlyAsync(task, guest, slot);
            throw;
        }
    }

    /// <summary>JobCleanup of the guest's own provider job, then the slot goes (after the provider is done with it).</summary>
    private static async Task EndClusterJobAsync(ServiceTask task, ConfiguredGuest guest, JobSession? job, ClusterSlot? slot, bool success, string error)
    {
        if (job is not null)
        {
            await job.EndAsync(success, error);
        }
        if (slot is not null)
        {
            await ReleaseQuietlyAsync(task, guest, slot);
        }
    }

    /// <summary>The run's current state, as the catalog has it, queued for the cluster's run records (a host alone: nothing).</summary>
    private void PublishRun(string taskId)
    {
        if (cluster is not null && catalog.Run(taskId) is { } run)
        {
            cluster.PublishRun(new ClusterRunRecord
            {
                Node = config.Host.Node, TaskId = run.TaskId, Kind = run.Kind, Job = run.Job, Storage = run.Storage,
                Started = run.Started, Ended = run.Ended, State = run.State, Error = run.Error,
                Guests = [.. run.Guests.Select(g => new ClusterGuestResult(g.GuestId, g.State, g.Archive, g.Error))],
            });
        }
    }

    private static async Task ReleaseQuietlyAsync(ServiceTask task, ConfiguredGuest guest, ClusterSlot slot)
    {
        try
        {
            await slot.DisposeAsync();
        }
        catch (Exception e) when (e is Grpc.Core.RpcException or OperationCanceledException)
        {
            // etcd unreachable: the slot's key goes with this host's lease within its TTL.
            task.Log("WARN", guest.Id, $"releasing cluster slot {slot.SlotName} failed: {e.Message}");
        }
    }
}
