using System.Net.Sockets;
using Grpc.Backup.Orchestrator.Internal;
using Grpc.Backup.Protocol.V1;
using Grpc.Core;
using Microsoft.Extensions.Logging;

namespace Grpc.Backup.Orchestrator;

/// <summary>Claiming a disk's source again when its NBD server went away (a provider restarted, as systemd would).</summary>
public sealed partial class LiveRestoreRunner
{
    /// <summary>
    /// <c>RestoreVmVolumeInit</c> again (idempotent: a new source for the same data), claimed with the first claim's
    /// checks; a provider that no longer knows the restore (NOT_FOUND: it restarted) has <c>RestoreVmInit</c> repeated
    /// first under the same id (idempotent too). One at a time per restore, so two disks reconnecting at once do not
    /// begin it twice. Only an NBD source can stand in for the NBD source the guard served (a file source never needs
    /// this: its qemu-nbd reads the host's own fd); the guard then checks it is the same export.
    /// </summary>
    private Func<CancellationToken, Task<Socket>> Reclaimer(string restoreId, string archiveName, VolumeSize volume, LiveRestoreOptions options,
        SemaphoreSlim oneAtATime) => async cancellationToken =>
    {
        await oneAtATime.WaitAsync(cancellationToken);
        try
        {
            return await ClaimAgainAsync();
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            LogNotReclaimed(logger, volume.DeviceName, e.Message);
            throw;
        }
        finally
        {
            oneAtATime.Release();
        }

        async Task<Socket> ClaimAgainAsync()
        {
            ClaimedRestoreSource claimed;
            try
            {
                claimed = await RequestAsync();
            }
            catch (RpcException e) when (e.StatusCode == StatusCode.NotFound)
            {
                await provider.Restore.RestoreVmInitAsync(new RestoreVmInitRequest { RestoreId = restoreId, ArchiveName = archiveName },
                    cancellationToken: cancellationToken);
                claimed = await RequestAsync();
            }
            using (claimed)
            {
                if (claimed.IsFile)
                {
                    throw new BackupException($"{volume.DeviceName}: the provider now answers a file where it served NBD");
                }
                LogReclaimed(logger, volume.DeviceName);
                return claimed.TakeNbdSocket();
            }
        }

        Task<ClaimedRestoreSource> RequestAsync() => ClaimedRestoreSource.RequestAsync(provider, restoreId, archiveName, volume, bandwidthLimit: 0,
            options.AllowBlockDevicePaths, options.ProviderRuntimeDirectory, cancellationToken);
    };

    [LoggerMessage(Level = LogLevel.Warning, Message = "Live restore: {Device}'s source claimed again from the provider")]
    private static partial void LogReclaimed(ILogger logger, string device);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Live restore: {Device}'s source cannot be claimed again yet: {Reason}")]
    private static partial void LogNotReclaimed(ILogger logger, string device, string reason);
}
