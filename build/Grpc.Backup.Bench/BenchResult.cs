using System.Text.Json.Serialization;

namespace Grpc.Backup.Bench;

/// <summary>One row of artifacts/bench/results.json. ratio = peer_s / ours_s: above 1 means we are faster.</summary>
internal sealed record BenchResult(
    [property: JsonPropertyName("name")] string Name,
    [property: JsonPropertyName("ours_s")] double OursSeconds,
    [property: JsonPropertyName("peer")] string Peer,
    [property: JsonPropertyName("peer_s")] double PeerSeconds,
    [property: JsonPropertyName("notes")] string Notes = "")
{
    [JsonPropertyName("ratio")]
    public double Ratio => OursSeconds > 0 ? PeerSeconds / OursSeconds : 0;
}
