namespace Grpc.Backup.Containers;

/// <summary>A finished restore: what validation found, and every warning (skipped members, tar's own messages).</summary>
public sealed record ContainerRestoreResult(TarValidationReport Report, IReadOnlyList<string> Warnings);
