using System.Text.Json.Serialization;

namespace Grpc.Backup.Providers.Directory.Internal;

/// <summary>Source-generated JSON for the files the provider keeps in the repository.</summary>
[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.CamelCase, WriteIndented = true,
    DefaultIgnoreCondition = JsonIgnoreCondition.Never)]
[JsonSerializable(typeof(ArchiveManifest))]
[JsonSerializable(typeof(IncrementalState))]
internal sealed partial class ManifestJson : JsonSerializerContext;
