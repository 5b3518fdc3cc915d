using System.Text.Json.Nodes;
using Grpc.Backup.Host;
using Grpc.Backup.Protocol.V1;
using Grpc.Backup.Qemu;

namespace Grpc.Backup.Orchestrator.Internal;

/// <summary>
/// One disk of a live restore: its guarded export and its <c>block-stream</c> job. The job runs with
/// <c>on-error=stop</c> (a failed read of the export pauses it, it does not fail it). Once QEMU reports
/// BLOCK_JOB_COMPLETED the qcow2 has every byte and no backing, and <see cref="ReleaseAsync"/> stops the guard and ends
/// the provider's volume session (<c>RestoreVmVolumeCleanup</c>), once.
/// </summary>
internal sealed class DiskStream(ProviderConnection provider, string restoreId, string archiveName, LiveRestoreDisk disk, LiveRestoreExport export)
{
    private QmpEventWaiter? _completed;
    private QmpEventWaiter? _cancelled;
    private int _released;

    public LiveRestoreDisk Disk => disk;

    public string JobId => disk.NodeName + "-stream";

    /// <summary>How often the export was reached again after losing its source.</summary>
    public int Reconnections => export.Reconnections;

    /// <summary>Set once the job completed without error: the disk depends on nothing else.</summary>
    public bool Independent { get; private set; }

    public async Task StartAsync(QmpClient qmp, ulong speed, CancellationToken cancellationToken)
    {
        _completed = qmp.CreateEventWaiter("BLOCK_JOB_COMPLETED", data => (string?)data["device"] == JobId);
        _cancelled = qmp.CreateEventWaiter("BLOCK_JOB_CANCELLED", data => (string?)data["device"] == JobId);
        await qmp.ExecuteAsync("block-stream", new JsonObject
        {
            ["job-id"] = JobId,
            ["device"] = disk.NodeName,
            ["speed"] = speed,
            ["on-error"] = "stop",
        }, cancellationToken);
    }

    /// <summary>Waits for the job's end; true when it completed (and the disk was released), false when cancelled.</summary>
    public async Task<bool> WaitAsync()
    {
        Task<QmpEvent> completed = _completed!.WaitAsync();
        Task<QmpEvent> ended = await Task.WhenAny(completed, _cancelled!.WaitAsync());
        QmpEvent finished = await ended;
        if (ended != completed)
        {
            return false;
        }
        if (finished.Data["error"] is { } error)
        {
            throw new BackupException($"{disk.DeviceName}: the stream failed: {error}");
        }
        Independent = true;
        await ReleaseAsync();
        return true;
    }

    /// <summary>Stops the guard (and its qemu-nbd) and ends the provider's volume session; runs once.</summary>
    public async Task ReleaseAsync()
    {
        if (Interlocked.Exchange(ref _released, 1) != 0)
        {
            return;
        }
        _completed?.Dispose();
        _cancelled?.Dispose();
        try
        {
            await export.DisposeAsync();
        }
        finally
        {
            await RestoreVolumes.CleanupAsync(provider, restoreId, archiveName, disk.DeviceName);
        }
    }
}
