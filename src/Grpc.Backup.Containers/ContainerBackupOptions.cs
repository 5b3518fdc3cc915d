namespace Grpc.Backup.Containers;

/// <summary>What to back up and how.</summary>
public sealed class ContainerBackupOptions
{
    /// <summary>The container's id map; <see cref="IdMap.Privileged"/> for a privileged container.</summary>
    public required IdMap IdMap { get; init; }

    /// <summary>The host path of the container's root file system (a btrfs subvolume in snapshot mode).</summary>
    public required string RootFileSystem { get; init; }

    /// <summary>Further volumes; those with <see cref="ContainerMountPoint.Backup"/> false are left out.</summary>
    public IReadOnlyList<ContainerMountPoint> MountPoints { get; init; } = [];

    public ContainerBackupMode Mode { get; init; } = ContainerBackupMode.Stop;

    /// <summary>Required in suspend mode; optional in snapshot mode (freezes around taking the snapshots); unused in stop mode.</summary>
    public IContainerFreezer? Freezer { get; init; }

    /// <summary>
    /// vzdump <c>exclude-path</c> patterns: a leading <c>/</c> anchors at the container root, others match anywhere;
    /// <c>*</c>, <c>?</c>, <c>[...]</c> and <c>**</c> are wildcards that also match <c>/</c>.
    /// </summary>
    public IReadOnlyList<string> ExcludePatterns { get; init; } = [];

    /// <summary>The host's bandwidth limit for the stream in bytes per second; 0 is unlimited.</summary>
    public ulong BytesPerSecond { get; init; }

    /// <summary>Where the work directory (view mount point, suspend-mode copy) is created (vzdump uses /var/tmp).</summary>
    public string TemporaryDirectory { get; init; } = "/var/tmp";

    /// <summary>
    /// Also record the tree's <see cref="FileManifest"/> while the view is in place, after the backup read it (a second
    /// walk that reads and hashes every file: it roughly doubles the container's read cost).
    /// </summary>
    public bool ComputeFileManifest { get; init; }
}
