using System.Text.Json.Serialization;

namespace Grpc.Backup.Cluster.Internal;

/// <summary>The run records' JSON, generated at build time.</summary>
[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.SnakeCaseLower, DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull)]
[JsonSerializable(typeof(ClusterRunRecord))]
internal sealed partial class RunRecordJson : JsonSerializerContext;
