using Grpc.Backup.Protocol.V1;

namespace Grpc.Backup.Orchestrator;

/// <summary>What one container backup produced; <paramref name="Warnings"/> are also in the task log.</summary>
public sealed record ContainerBackupResult(string ArchiveName, ContainerBackupMechanism Mechanism, BackupStats Stats,
    IReadOnlyList<string> Warnings, bool Privileged);
