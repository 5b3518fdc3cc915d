namespace Grpc.Backup.Provider;

/// <summary>
/// One complete backup as prune sees it: the provider's own handle for it, its archive name (which orders backups of
/// the same time) and what the keep rules look at.
/// </summary>
public sealed record RetentionCandidate<TArchive>(TArchive Archive, string Name, DateTimeOffset BackupTime, bool Protected);
