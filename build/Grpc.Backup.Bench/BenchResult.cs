using System.Text.Json.Serialization;

namespace Grpc.Backup.Bench;

/// <summary>
/// One row of artifacts/bench/results.json. ratio = peer_s / ours_s: above 1 means we are faster. A row in another
/// <see cref="Unit"/> (MiB) carries its values in the same two fields; its peer is the goal, so above 1 still means met.
/// </summary>
internal sealed record BenchResult(
    [property: JsonPropertyName("name")] string Name,
    [property: JsonPropertyName("ours_s")] double OursSeconds,
    [property: JsonPropertyName("peer")] string Peer,
    [property: JsonPropertyName("peer_s")] double PeerSeconds,
    [property: JsonPropertyName("notes")] string Notes = "",
    [property: JsonPropertyName("unit")] string Unit = "s")
{
    [JsonPropertyName("ratio")]
    public double Ratio => OursSeconds > 0 ? PeerSeconds / OursSeconds : 0;
}
