namespace Grpc.Backup.Containers;

/// <summary>How a consistent view of the container's files is obtained (vzdump's modes).</summary>
public enum ContainerBackupMode
{
    /// <summary>The caller guarantees the container is stopped: the view is its volumes, bound read-only.</summary>
    Stop,

    /// <summary>
    /// The container keeps running: its files are copied with rsync to a temporary directory, then copied again while
    /// the caller keeps it frozen (<see cref="IContainerFreezer"/>), and the copy is archived.
    /// </summary>
    Suspend,

    /// <summary>
    /// Each backed-up volume must be a btrfs subvolume: read-only snapshots are taken (inside a freeze if a freezer is
    /// given) and archived; any other file system is an error.
    /// </summary>
    Snapshot,
}
