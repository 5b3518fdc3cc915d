using Grpc.Backup.Containers;

namespace Grpc.Backup.Orchestrator;

/// <summary>A finished container restore: the validated extraction, and the configs as the archive holds them.</summary>
public sealed record ContainerRestoreRunResult(ContainerRestoreResult Extraction, ReadOnlyMemory<byte> GuestConfig, ReadOnlyMemory<byte>? FirewallConfig);
