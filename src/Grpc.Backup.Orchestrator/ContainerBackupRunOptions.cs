using Grpc.Backup.Containers;

namespace Grpc.Backup.Orchestrator;

/// <summary>How one container is backed up.</summary>
public sealed class ContainerBackupRunOptions
{
    /// <summary>A private, root-only directory for the task log.</summary>
    public required string RuntimeDirectory { get; init; }

    /// <summary>
    /// Where the per-guest lock lives (<see cref="GuestLock"/>): held for the whole backup, so another process backing up
    /// the same guest with the same directory is refused (<see cref="GuestLockedException"/>). Null: no lock (a caller
    /// that serialises its guests itself, e.g. a scratch guest).
    /// </summary>
    public string? LockDirectory { get; init; }

    /// <summary>How long the provider may report no progress during BackupContainer before the host cancels the backup
    /// (host.conf <c>provider-inactivity-timeout</c>). Zero: no limit.</summary>
    public TimeSpan ProviderInactivityTimeout { get; init; } = TimeSpan.FromMinutes(5);

    public ContainerBackupMode Mode { get; init; } = ContainerBackupMode.Stop;

    /// <summary>The backup's id (a UUID); a new one when null. A journaling service chooses it up front.</summary>
    public string? BackupId { get; init; }

    /// <summary>vzdump exclusion patterns (a leading '/' anchors at the container root).</summary>
    public IReadOnlyList<string> ExcludePatterns { get; init; } = [];

    /// <summary>The job's bandwidth limit in bytes per second; 0 is unlimited.</summary>
    public ulong BandwidthLimit { get; init; }

    /// <summary>Where views and suspend-mode copies are built (vzdump uses /var/tmp).</summary>
    public string TemporaryDirectory { get; init; } = "/var/tmp";

    /// <summary>
    /// Record the container's file manifest (<see cref="Containers.FileManifest"/>) while the view is in place, for
    /// verification; it reads and hashes the tree a second time.
    /// </summary>
    public bool ComputeFileManifest { get; init; }
}
