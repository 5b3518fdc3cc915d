using Grpc.Backup.Containers;
using Grpc.Backup.Protocol.V1;

namespace Grpc.Backup.Orchestrator;

/// <summary>
/// What one container backup produced; <paramref name="Warnings"/> are also in the task log. <paramref name="Manifest"/>
/// is the tree's file manifest when it was asked for and could be made.
/// </summary>
public sealed record ContainerBackupResult(string ArchiveName, ContainerBackupMechanism Mechanism, BackupStats Stats,
    IReadOnlyList<string> Warnings, bool Privileged, FileManifest? Manifest = null);
