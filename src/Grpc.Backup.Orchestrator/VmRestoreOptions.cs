using Grpc.Backup.Orchestrator.Inventory;

namespace Grpc.Backup.Orchestrator;

/// <summary>Where and how a VM archive is restored.</summary>
public sealed class VmRestoreOptions
{
    /// <summary>
    /// The directory for the restored disks and configs: it must not exist (it is created, mode 0700), or be an empty
    /// directory owned by root that only root can write. A symlink or a file there is refused.
    /// </summary>
    public required string TargetDirectory { get; init; }

    /// <summary>The format of the restored disks.</summary>
    public DiskFormat TargetFormat { get; init; } = DiskFormat.Raw;

    /// <summary>The restore bandwidth limit in bytes per second, enforced by the host; 0 is unlimited.</summary>
    public ulong BandwidthLimit { get; init; }

    /// <summary>What becomes of the disks the guest config marks <c>backup=no</c> (they are not in the archive).</summary>
    public ExcludedDiskRestore ExcludedDisks { get; init; } = ExcludedDiskRestore.RecreateEmpty;

    /// <summary>
    /// Whether a provider may name a block device as a path source (read by root). Off by default: a provider that
    /// names /dev/sda would have the host copy a host disk into the restored one. Devices passed as fds are unaffected.
    /// </summary>
    public bool AllowBlockDevicePaths { get; init; }

    /// <summary>
    /// How long a restore source may deliver no data before the restore is cancelled (the host's
    /// <c>provider-inactivity-timeout</c>); zero waits forever. A provider whose NBD export stops answering otherwise
    /// holds the restore, its target and its job slot forever.
    /// </summary>
    public TimeSpan ProviderInactivityTimeout { get; init; } = TimeSpan.FromMinutes(5);

    /// <summary>
    /// The provider's runtime directory (systemd's RuntimeDirectory=), when known: <c>nbd_uri</c> sources must name a
    /// socket under it. Whether known or not, the socket and its directory must belong to the provider's uid.
    /// </summary>
    public string? ProviderRuntimeDirectory { get; init; }
}
