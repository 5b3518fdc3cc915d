namespace Grpc.Backup.Orchestrator;

/// <summary>How one VM is backed up.</summary>
public sealed class VmBackupOptions
{
    /// <summary>Where fleecing images go; must support punch-hole (a local filesystem, not tmpfs when space matters).</summary>
    public required string FleecingDirectory { get; init; }

    /// <summary>A private, root-only directory for the snapshot NBD socket.</summary>
    public required string RuntimeDirectory { get; init; }

    /// <summary>
    /// Where the per-guest lock lives (<see cref="GuestLock"/>): held for the whole backup, so another process backing up
    /// the same guest with the same directory is refused (<see cref="GuestLockedException"/>). Null: no lock (a caller
    /// that serialises its guests itself, e.g. a scratch guest).
    /// </summary>
    public string? LockDirectory { get; init; }

    /// <summary>
    /// How long the provider may report no progress during BackupVm before the host cancels the backup, tears down and
    /// moves on (host.conf <c>provider-inactivity-timeout</c>). Zero: no limit.
    /// </summary>
    public TimeSpan ProviderInactivityTimeout { get; init; } = TimeSpan.FromMinutes(5);

    /// <summary>
    /// The free space the fleecing filesystem must keep while the guest runs on copy-before-write: below it the backup
    /// is aborted before the guest could meet ENOSPC (host.conf <c>fleecing-reserve</c>). Zero: not watched.
    /// </summary>
    public ulong FleecingReserve { get; init; } = 256UL << 20;

    /// <summary>The storage's id: each storage keeps its own dirty bitmap, so two providers never share a chain.</summary>
    public required string StorageId { get; init; }

    /// <summary>How a running guest is held for the backup (vzdump's snapshot, suspend and stop).</summary>
    public VmBackupMode Mode { get; init; } = VmBackupMode.Snapshot;

    /// <summary>Stop mode: how long the guest has to shut down after the ACPI powerdown before the backup fails.</summary>
    public TimeSpan ShutdownTimeout { get; init; } = TimeSpan.FromMinutes(3);

    /// <summary>The job's bandwidth limit in bytes per second for the whole backup, enforced by the host (in the NBD guards every snapshot read passes) and told to the provider; 0 is unlimited.</summary>
    public ulong BandwidthLimit { get; init; }

    /// <summary>How long a guest write may wait for its copy-before-write before the snapshot breaks.</summary>
    public TimeSpan CbwTimeout { get; init; } = TimeSpan.FromSeconds(45);

    /// <summary>
    /// The backup's id (a UUID); a new one when null. A service that journals its work chooses it up front, so that
    /// after a crash it can still call BackupCleanup for the half-written backup.
    /// </summary>
    public string? BackupId { get; init; }

    /// <summary>Receives every progress report of the provider (the task log only samples them).</summary>
    public IProgress<Protocol.V1.Progress>? Progress { get; init; }

    /// <summary>How long the guest agent has to answer before the host falls back to a crash-consistent switch.</summary>
    public TimeSpan AgentTimeout { get; init; } = TimeSpan.FromSeconds(10);
}
