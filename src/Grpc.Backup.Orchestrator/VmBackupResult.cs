using Grpc.Backup.Protocol;
using Grpc.Backup.Protocol.V1;

namespace Grpc.Backup.Orchestrator;

/// <summary>What one VM backup produced.</summary>
public sealed record VmBackupResult(string ArchiveName, IReadOnlyList<VolumeCompleted> Volumes, BackupStats Stats,
    Consistency Consistency)
{
    /// <summary>Where the backup's time went (init, quiesce, setup, copy, teardown, commit).</summary>
    public PhaseTimings Phases { get; init; } = new();

    /// <summary>The chunk lists the provider streamed (<c>VolumeChunkDigests</c>), by device, each checked against its digest.</summary>
    public IReadOnlyDictionary<string, ChunkDigestList> ChunkDigests { get; init; } = new Dictionary<string, ChunkDigestList>();
}
