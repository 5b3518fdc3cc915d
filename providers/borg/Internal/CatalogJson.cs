using System.Text.Json.Serialization;

namespace Grpc.Backup.Providers.Borg.Internal;

/// <summary>Source-generated JSON for the catalog files and the archive comment.</summary>
[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.CamelCase, WriteIndented = false)]
[JsonSerializable(typeof(CatalogEntry))]
[JsonSerializable(typeof(ArchiveMetadata))]
[JsonSerializable(typeof(IncrementalState))]
internal sealed partial class CatalogJson : JsonSerializerContext;
