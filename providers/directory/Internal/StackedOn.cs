namespace Grpc.Backup.Providers.Directory.Internal;

/// <summary>The incremental base a REUSE volume stacks on: the archive and its stored volume.</summary>
internal sealed record StackedOn(ArchiveRef Archive, ManifestVolume Volume);
