using Google.Protobuf.Collections;
using Grpc.Backup.Host;
using Grpc.Backup.Protocol;
using Grpc.Backup.Protocol.V1;

namespace Grpc.Backup.Orchestrator.Internal;

/// <summary>The device list a provider's <c>RestoreVmInit</c> declares, judged before any data is asked for.</summary>
internal static class RestoreVolumes
{
    private const int MaxDevices = 64;

    /// <summary><c>RestoreVmVolumeCleanup</c> for one device (on every path, never cancelled).</summary>
    public static async Task CleanupAsync(ProviderConnection provider, string restoreId, string archiveName, string device) =>
        await provider.Restore.RestoreVmVolumeCleanupAsync(new RestoreVmVolumeCleanupRequest
        {
            RestoreId = restoreId,
            ArchiveName = archiveName,
            DeviceName = device,
        }, cancellationToken: CancellationToken.None);

    public static void Validate(RepeatedField<VolumeSize> volumes)
    {
        if (volumes.Count is 0 or > MaxDevices)
        {
            throw new BackupException($"the provider listed {volumes.Count} devices; expected 1 to {MaxDevices}");
        }
        var seen = new HashSet<string>(StringComparer.Ordinal);
        foreach (VolumeSize volume in volumes)
        {
            if (!DeviceName.IsValid(volume.DeviceName) || !seen.Add(volume.DeviceName))
            {
                throw new BackupException($"the provider listed an invalid or repeated device name '{volume.DeviceName}'");
            }
            if (volume.SizeBytes == 0 || volume.SizeBytes > (1UL << 50))
            {
                throw new BackupException($"{volume.DeviceName}: size {volume.SizeBytes} is not plausible");
            }
        }
    }

    /// <summary>
    /// The declared sizes come from the provider (or a tampered repository): a restore writes sparse, but a disk that
    /// could not be filled on this file system is refused before anything is copied, so no archive can make the host
    /// fill its disk by declaring a size it never wrote.
    /// </summary>
    public static void CheckSpace(RepeatedField<VolumeSize> volumes, RestoreTarget target)
    {
        ulong total = volumes.Aggregate(0UL, (sum, v) => sum + v.SizeBytes);
        long available = target.AvailableBytes;
        if (total > (ulong)available)
        {
            throw new BackupException($"the archive declares {total} bytes of disks but the restore target's file system has only {available} bytes free; "
                + "restore to a larger file system");
        }
    }
}
