namespace Grpc.Backup.Provider;

/// <summary>Whether prune keeps one archive, and the rule that decided it.</summary>
public sealed record RetentionDecision<TArchive>(TArchive Archive, string Name, bool Keep, string Reason);
