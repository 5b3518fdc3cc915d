using System.Globalization;

namespace Grpc.Backup.Cluster;

/// <summary>
/// The cluster's hosts: <c>nodes/NODE</c> (the lease id in hex, then the definitions revision the host uses), read with
/// the guest registrations and the run records for <c>status --cluster</c>.
/// </summary>
public sealed partial class ClusterSession
{
    /// <summary>How many run records <see cref="ListHostsAsync"/> reads for the hosts' unfinished runs.</summary>
    private const int HostRunsRead = 1000;

    /// <summary>
    /// Records the revision of the applied definitions this host uses (0: none) in its node key; same key, same lease,
    /// so the key's create revision (the host's join) stays.
    /// </summary>
    public Task SetDefinitionsRevisionAsync(long revision, CancellationToken cancellationToken = default) =>
        Keys.PutAsync(Key("nodes/" + Node), NodeValue(revision), LeaseId, cancellationToken);

    /// <summary>
    /// Every host the cluster knows: the live ones (a node key) and those with run records only (gone), ordered by name,
    /// each with its registered guests, its definitions revision and its unfinished runs (<see cref="ListRunsAsync"/>'s
    /// rule: a gone or restarted host's are shown failed).
    /// </summary>
    public async Task<IReadOnlyList<ClusterHostStatus>> ListHostsAsync(CancellationToken cancellationToken = default)
    {
        string nodesPrefix = Key("nodes/");
        var (nodes, _) = await Keys.RangeAsync(nodesPrefix, cancellationToken).ConfigureAwait(false);
        var revisions = nodes.ToDictionary(kv => kv.Key.ToStringUtf8()[nodesPrefix.Length..], kv => DefinitionsRevisionOf(kv.Value.ToStringUtf8()),
            StringComparer.Ordinal);
        IReadOnlyDictionary<string, IReadOnlyList<string>> guests = await ListGuestsAsync(cancellationToken).ConfigureAwait(false);
        IReadOnlyList<ClusterRunRecord> runs = await ListRunsAsync(HostRunsRead, cancellationToken).ConfigureAwait(false);
        var unfinished = runs.Where(r => r.State == ClusterRunRecord.Running || !revisions.ContainsKey(r.Node) && r.Ended is null)
            .ToLookup(r => r.Node, StringComparer.Ordinal);
        return [.. revisions.Keys.Concat(guests.Keys).Concat(runs.Select(r => r.Node)).Distinct(StringComparer.Ordinal).Order(StringComparer.Ordinal)
            .Select(node => new ClusterHostStatus(node, revisions.ContainsKey(node), revisions.GetValueOrDefault(node),
                guests.TryGetValue(node, out var registered) ? registered : [], [.. unfinished[node]]))];
    }

    private string NodeValue(long definitionsRevision) =>
        string.Create(CultureInfo.InvariantCulture, $"{LeaseId:x} {definitionsRevision}");

    private static long DefinitionsRevisionOf(string nodeValue) =>
        nodeValue.Split(' ') is [_, string revision] && long.TryParse(revision, NumberStyles.None, CultureInfo.InvariantCulture, out long parsed) ? parsed : 0;
}
