namespace Grpc.Backup.Cluster;

/// <summary>Guest registrations: <c>guests/NODE/GUEST</c>, bound to the session's lease.</summary>
public sealed partial class ClusterSession
{
    /// <summary>
    /// Registers the guests this host runs and removes its registrations of guests it no longer lists. All bound to the
    /// lease, so a dead host's guests drop out of the cluster with it.
    /// </summary>
    public async Task RegisterGuestsAsync(IEnumerable<string> guestIds, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(guestIds);
        var wanted = new HashSet<string>(guestIds, StringComparer.Ordinal);
        string prefix = Key($"guests/{Node}/");
        var (kvs, _) = await Keys.RangeAsync(prefix, cancellationToken).ConfigureAwait(false);
        foreach (var kv in kvs)
        {
            string key = kv.Key.ToStringUtf8();
            if (!wanted.Contains(key[prefix.Length..]))
            {
                await Keys.DeleteAsync(key, cancellationToken).ConfigureAwait(false);
            }
        }
        foreach (string guest in wanted)
        {
            await Keys.PutAsync(prefix + guest, "", LeaseId, cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>Every registered guest of the cluster, by node.</summary>
    public async Task<IReadOnlyDictionary<string, IReadOnlyList<string>>> ListGuestsAsync(CancellationToken cancellationToken = default)
    {
        string prefix = Key("guests/");
        var (kvs, _) = await Keys.RangeAsync(prefix, cancellationToken).ConfigureAwait(false);
        return kvs.Select(kv => kv.Key.ToStringUtf8()[prefix.Length..].Split('/', 2))
            .GroupBy(parts => parts[0], parts => parts[1], StringComparer.Ordinal)
            .ToDictionary(g => g.Key, g => (IReadOnlyList<string>)[.. g.Order(StringComparer.Ordinal)], StringComparer.Ordinal);
    }
}
