namespace Grpc.Backup.Providers.Directory.Internal;

/// <summary>Whether prune keeps one archive, and the rule that decided it.</summary>
internal sealed record RetentionDecision(ArchiveRef Archive, bool Keep, string Reason);
