namespace Grpc.Backup.Providers.Directory.Internal;

/// <summary>One complete backup as prune sees it.</summary>
internal sealed record RetentionCandidate(ArchiveRef Archive, DateTimeOffset BackupTime, bool Protected);
