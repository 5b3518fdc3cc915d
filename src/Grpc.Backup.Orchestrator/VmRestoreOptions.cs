using Grpc.Backup.Orchestrator.Inventory;

namespace Grpc.Backup.Orchestrator;

/// <summary>Where and how a VM archive is restored.</summary>
public sealed class VmRestoreOptions
{
    /// <summary>A new directory for the restored disks and configs; it must not exist yet.</summary>
    public required string TargetDirectory { get; init; }

    /// <summary>The format of the restored disks.</summary>
    public DiskFormat TargetFormat { get; init; } = DiskFormat.Raw;

    /// <summary>The restore bandwidth limit in bytes per second, enforced by the host; 0 is unlimited.</summary>
    public ulong BandwidthLimit { get; init; }

    /// <summary>What becomes of the disks the guest config marks <c>backup=no</c> (they are not in the archive).</summary>
    public ExcludedDiskRestore ExcludedDisks { get; init; } = ExcludedDiskRestore.RecreateEmpty;
}
