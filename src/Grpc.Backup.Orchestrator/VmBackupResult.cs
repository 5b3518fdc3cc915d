using Grpc.Backup.Protocol.V1;

namespace Grpc.Backup.Orchestrator;

/// <summary>What one VM backup produced.</summary>
public sealed record VmBackupResult(string ArchiveName, IReadOnlyList<VolumeCompleted> Volumes, BackupStats Stats,
    Consistency Consistency)
{
    /// <summary>Where the backup's time went (init, quiesce, setup, copy, teardown, commit).</summary>
    public PhaseTimings Phases { get; init; } = new();
}
