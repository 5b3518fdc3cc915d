using System.Text.Json;
using Grpc.Backup.Cluster.Internal;

namespace Grpc.Backup.Cluster;

/// <summary>
/// Run records: <c>runs/NODE/TASK</c>, one JSON summary per run, written by the host that runs it and not bound to
/// its lease (a record outlives the host). Bounded: each host keeps its newest <see cref="ClusterOptions.RunRecordsKept"/>
/// and deletes older ones as it writes. A record still "running" whose host's session is gone, or began after the
/// record was last written (the host restarted), is shown failed with the reason: the host can no longer finish it.
/// </summary>
public sealed partial class ClusterSession
{
    /// <summary>Writes (or rewrites) this host's record of a run, then trims this host's records to the newest kept.</summary>
    public async Task PublishRunAsync(ClusterRunRecord record, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(record);
        if (record.Node != Node)
        {
            throw new ArgumentException($"a run of {record.Node} is not this host's ({Node}) to publish", nameof(record));
        }
        ThrowIfLost();
        string prefix = Key($"runs/{Node}/");
        await Keys.PutAsync(prefix + record.TaskId, JsonSerializer.Serialize(record, RunRecordJson.Default.ClusterRunRecord), 0, cancellationToken)
            .ConfigureAwait(false);
        var (kvs, _) = await Keys.RangeAsync(prefix, cancellationToken).ConfigureAwait(false);
        foreach (var old in kvs.OrderByDescending(kv => kv.CreateRevision).Skip(Options.RunRecordsKept))
        {
            await Keys.DeleteAsync(old.Key.ToStringUtf8(), cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>Every host's recorded runs, newest first; unfinished runs of hosts that are gone are shown failed.</summary>
    public async Task<IReadOnlyList<ClusterRunRecord>> ListRunsAsync(int limit, CancellationToken cancellationToken = default)
    {
        string nodesPrefix = Key("nodes/");
        var (nodes, _) = await Keys.RangeAsync(nodesPrefix, cancellationToken).ConfigureAwait(false);
        var joined = nodes.ToDictionary(kv => kv.Key.ToStringUtf8()[nodesPrefix.Length..], kv => kv.CreateRevision, StringComparer.Ordinal);
        string runsPrefix = Key("runs/");
        var (kvs, _) = await Keys.RangeAsync(runsPrefix, cancellationToken).ConfigureAwait(false);
        var runs = new List<ClusterRunRecord>(kvs.Count);
        foreach (var kv in kvs)
        {
            ClusterRunRecord? record;
            try
            {
                record = JsonSerializer.Deserialize(kv.Value.Span, RunRecordJson.Default.ClusterRunRecord);
            }
            catch (JsonException)
            {
                continue;
            }
            string[] path = kv.Key.ToStringUtf8()[runsPrefix.Length..].Split('/');
            if (record is null || path.Length != 2)
            {
                continue;
            }
            // The key says whose run it is (etcd's auth lets a host write only its own), not the value.
            record = record with { Node = path[0], TaskId = path[1] };
            if (record.State == ClusterRunRecord.Running)
            {
                string? reason = !joined.TryGetValue(record.Node, out long since)
                    ? $"host {record.Node} left the cluster during the run (its lease expired or it stopped)"
                    : since > kv.ModRevision ? $"host {record.Node} rejoined the cluster since the run began (it restarted)" : null;
                if (reason is not null)
                {
                    record = record with
                    {
                        State = "failed",
                        Error = reason,
                        Guests = [.. record.Guests.Select(g => g.State == ClusterRunRecord.Running ? g with { State = "failed", Error = reason } : g)],
                    };
                }
            }
            runs.Add(record);
        }
        return [.. runs.OrderByDescending(r => r.Started).ThenBy(r => r.Node, StringComparer.Ordinal).Take(limit)];
    }
}
