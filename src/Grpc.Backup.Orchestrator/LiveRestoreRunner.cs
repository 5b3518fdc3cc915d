using System.Globalization;
using System.Text.Json.Nodes;
using Grpc.Backup.Host;
using Grpc.Backup.Orchestrator.Internal;
using Grpc.Backup.Protocol.V1;
using Grpc.Backup.Qemu;
using Microsoft.Extensions.Logging;

namespace Grpc.Backup.Orchestrator;

/// <summary>
/// Restores a VM archive live onto qcow2 disks: the guest starts at once on a local qcow2 per disk whose backing is
/// the provider's restore source, claimed exactly as <see cref="VmRestoreRunner"/> claims it and served to QEMU only
/// through the host's NBD guard; then <c>block-stream</c> fills each qcow2 while the guest runs (the guest's writes go
/// to the qcow2 and are never overwritten by the stream). See CONTRIBUTING.md, "How one live restore flows".
/// </summary>
public sealed partial class LiveRestoreRunner(ProviderConnection provider, ILogger<LiveRestoreRunner> logger)
{
    /// <summary>
    /// Prepares every disk, has <paramref name="startGuest"/> start the VM on them (it returns the VM's QMP socket,
    /// which the session uses until the restore ends) and starts the streams.
    /// </summary>
    public async Task<LiveRestoreSession> StartAsync(string archiveName, LiveRestoreOptions options,
        Func<LiveRestoreGuest, CancellationToken, Task<string>> startGuest, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(startGuest);
        VmArchiveHeader header = await VmArchiveHeader.ReadAsync(provider, archiveName, cancellationToken);
        using RestoreTarget target = RestoreTarget.Open(options.TargetDirectory);
        string restoreId = Guid.NewGuid().ToString();
        var streams = new List<DiskStream>();
        var reclaims = new SemaphoreSlim(1, 1);
        bool guestStarted = false;
        try
        {
            var init = await provider.Restore.RestoreVmInitAsync(new RestoreVmInitRequest { RestoreId = restoreId, ArchiveName = archiveName },
                cancellationToken: cancellationToken);
            RestoreVolumes.Validate(init.Volumes);
            RestoreVolumes.CheckSpace(init.Volumes, target);
            foreach (VolumeSize volume in init.Volumes)
            {
                streams.Add(await PrepareDiskAsync(restoreId, archiveName, volume, streams.Count, target, options,
                    Reclaimer(restoreId, archiveName, volume, options, reclaims), cancellationToken));
            }
            await header.WriteAsync(target, cancellationToken);
            string qmpSocket = await startGuest(new LiveRestoreGuest(streams.Select(s => s.Disk).ToArray(), header.GuestConfig), cancellationToken);
            guestStarted = true;
            var session = new LiveRestoreSession(provider, archiveName, restoreId, await QmpClient.ConnectAsync(qmpSocket, cancellationToken), streams);
            try
            {
                await session.StartAsync(options.BandwidthLimit, cancellationToken);
            }
            catch
            {
                await session.DisposeAsync();
                throw;
            }
            LogStarted(logger, archiveName, streams.Count);
            return session;
        }
        catch
        {
            // Before the guest started nothing uses the files (they are removed); after, a guest the host cannot drive
            // loses its exports and pauses on its next read of them (rerror=stop), its files left for the caller.
            foreach (DiskStream stream in streams)
            {
                await ProviderCleanup.IgnoringProviderErrorsAsync(stream.ReleaseAsync);
            }
            await ProviderCleanup.IgnoringProviderErrorsAsync(() => provider.Restore.RestoreVmCleanupAsync(
                new RestoreVmCleanupRequest { RestoreId = restoreId, ArchiveName = archiveName }, cancellationToken: CancellationToken.None).ResponseAsync);
            if (!guestStarted)
            {
                target.RemoveCreated();
            }
            throw;
        }
    }

    private async Task<DiskStream> PrepareDiskAsync(string restoreId, string archiveName, VolumeSize volume, int index, RestoreTarget target,
        LiveRestoreOptions options, Func<CancellationToken, Task<System.Net.Sockets.Socket>> reclaim, CancellationToken cancellationToken)
    {
        LiveRestoreExport export;
        try
        {
            // No limit for the provider: the host paces the stream alone (block-stream's speed), so the guest's own reads
            // of data not yet streamed are never held back by a provider-side limit.
            using ClaimedRestoreSource claimed = await ClaimedRestoreSource.RequestAsync(provider, restoreId, archiveName, volume,
                bandwidthLimit: 0, options.AllowBlockDevicePaths, options.ProviderRuntimeDirectory, cancellationToken);
            export = await LiveRestoreExport.StartAsync(claimed, volume, reclaim, cancellationToken);
        }
        catch
        {
            await ProviderCleanup.IgnoringProviderErrorsAsync(() => RestoreVolumes.CleanupAsync(provider, restoreId, archiveName, volume.DeviceName));
            throw;
        }
        string nodeName = $"lr{index}";
        string imageName = volume.DeviceName + ".qcow2";
        var nbd = new JsonObject
        {
            ["driver"] = "nbd",
            ["server"] = new JsonObject { ["type"] = "unix", ["path"] = export.SocketPath },
            ["export"] = export.ExportName,
        };
        var disk = new LiveRestoreDisk(volume.DeviceName, target.PathOf(imageName), nodeName, new JsonObject
        {
            ["driver"] = "qcow2",
            ["node-name"] = nodeName,
            ["file"] = new JsonObject { ["driver"] = "file", ["filename"] = target.PathOf(imageName) },
            ["backing"] = new JsonObject
            {
                ["driver"] = "nbd",
                ["node-name"] = nodeName + "-nbd",
                ["server"] = new JsonObject { ["type"] = "unix", ["path"] = export.SocketPath },
                ["export"] = export.ExportName,
                ["reconnect-delay"] = (long)options.ReconnectDelay.TotalSeconds,
                ["read-only"] = true,
            },
        }.ToJsonString(), (long)volume.SizeBytes);
        var stream = new DiskStream(provider, restoreId, archiveName, disk, export);
        try
        {
            // Created exclusively first; the header names the guarded export as backing (never opened here: -u), so an
            // unfinished image cannot be opened alone and read as zeros where data was still to come.
            target.CreateFile(imageName).Dispose();
            await QemuImg.RunAsync(["create", "-q", "-f", "qcow2", "-u", "-F", "raw", "-b", "json:" + nbd.ToJsonString(),
                target.PinnedPathOf(imageName), volume.SizeBytes.ToString(CultureInfo.InvariantCulture)], cancellationToken);
        }
        catch
        {
            await ProviderCleanup.IgnoringProviderErrorsAsync(stream.ReleaseAsync);
            throw;
        }
        return stream;
    }


    [LoggerMessage(Level = LogLevel.Information, Message = "Live restore of {Archive}: the guest runs, {Count} disk(s) streaming")]
    private static partial void LogStarted(ILogger logger, string archive, int count);
}
