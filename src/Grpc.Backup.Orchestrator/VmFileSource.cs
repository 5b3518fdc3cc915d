using Grpc.Backup.Host;

namespace Grpc.Backup.Orchestrator;

/// <summary>A VM archive to browse: the provider that holds it and its name.</summary>
public sealed record VmFileSource(ProviderConnection Provider, string ArchiveName);
