using Grpc.Backup.Protocol.V1;

namespace Grpc.Backup.Orchestrator;

/// <summary>What one VM backup produced.</summary>
public sealed record VmBackupResult(string ArchiveName, IReadOnlyList<VolumeCompleted> Volumes, BackupStats Stats,
    Consistency Consistency);
