using System.Globalization;
using Grpc.Backup.Cluster.Internal;
using Microsoft.Extensions.Logging;

namespace Grpc.Backup.Cluster;

/// <summary>
/// Backup slots: <c>slots/storage/STORAGE/I</c> (cluster-wide, I below the storage's limit) and
/// <c>slots/host/NODE/I</c> (per host), each a key bound to the holder's lease and created only if absent.
/// </summary>
public sealed partial class ClusterSession
{
    /// <summary>
    /// Takes a per-host slot (when <paramref name="hostLimit"/> is above 0), then one of the storage's
    /// <paramref name="storageLimit"/> cluster-wide slots; waits while all are held. Always in that order: a host's own
    /// slots are contended only by itself, so no two hosts can wait on each other in a cycle. The returned slot's
    /// revision is the fencing token. Throws <see cref="ClusterSessionLostException"/> once the lease is lost (fail
    /// safe: no new backup starts without a live session).
    /// </summary>
    public async Task<ClusterSlot> AcquireSlotAsync(string storage, uint storageLimit, uint hostLimit, CancellationToken cancellationToken = default)
    {
        ArgumentOutOfRangeException.ThrowIfZero(storageLimit);
        ClusterSlot? host = hostLimit == 0 ? null : await AcquireAsync($"host/{Node}", hostLimit, null, cancellationToken).ConfigureAwait(false);
        try
        {
            return await AcquireAsync($"storage/{storage}", storageLimit, host, cancellationToken).ConfigureAwait(false);
        }
        catch
        {
            if (host is not null)
            {
                await host.DisposeAsync().ConfigureAwait(false);
            }
            throw;
        }
    }

    /// <summary>The holders of a scope's slots now (<c>storage/NAME</c> or <c>host/NODE</c>): slot name to node.</summary>
    public async Task<IReadOnlyDictionary<string, string>> ListSlotsAsync(string scope, CancellationToken cancellationToken = default)
    {
        string prefix = Key("slots/");
        var (kvs, _) = await Keys.RangeAsync(Key($"slots/{scope}/"), cancellationToken).ConfigureAwait(false);
        return kvs.ToDictionary(kv => kv.Key.ToStringUtf8()[prefix.Length..], kv => kv.Value.ToStringUtf8().Split(':')[0], StringComparer.Ordinal);
    }

    /// <summary>
    /// One slot of <paramref name="scope"/>, taken under this session. An etcd error that another attempt may not have
    /// (a member gone, a leader election longer than <see cref="EtcdRetry.Budget"/>) is tried again while the session
    /// lives; a call cut off because the lease was lost meanwhile ends in <see cref="ClusterSessionLostException"/>, so the
    /// caller takes the slot under its next session instead of failing the backup.
    /// </summary>
    private async Task<ClusterSlot> AcquireAsync(string scope, uint limit, ClusterSlot? hostSlot, CancellationToken cancellationToken)
    {
        // One holder value for every attempt: a create that committed but whose answer was lost is found ours by the next.
        string holder = $"{Node}:{Guid.NewGuid():N}";
        while (true)
        {
            try
            {
                return await TryAcquireAsync(scope, limit, holder, hostSlot, cancellationToken).ConfigureAwait(false);
            }
            catch (Exception e) when (e is Grpc.Core.RpcException or OperationCanceledException
                && Lost.IsCancellationRequested && !cancellationToken.IsCancellationRequested)
            {
                throw new ClusterSessionLostException(Node);
            }
            catch (Grpc.Core.RpcException e) when (EtcdRetry.IsTransient(e, cancellationToken))
            {
                _logger.LogWarning("taking a cluster slot of {Scope}: etcd answered {Error}; trying again while the session lives", scope, e.Status.Detail);
                await Task.Delay(TimeSpan.FromMilliseconds(200), cancellationToken).ConfigureAwait(false);
            }
        }
    }

    private async Task<ClusterSlot> TryAcquireAsync(string scope, uint limit, string holder, ClusterSlot? hostSlot, CancellationToken cancellationToken)
    {
        string prefix = Key($"slots/{scope}/");
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, Lost);
        // Slots are mostly free: try the first one before reading the scope, so an uncontended take is one round trip.
        ThrowIfLost();
        long first = await Keys.TryCreateAsync(prefix + "0", holder, LeaseId, linked.Token).ConfigureAwait(false);
        if (first > 0)
        {
            return new ClusterSlot(Keys, prefix + "0", $"{scope}/0", first, hostSlot);
        }
        while (true)
        {
            ThrowIfLost();
            cancellationToken.ThrowIfCancellationRequested();
            var (kvs, revision) = await Keys.RangeAsync(prefix, linked.Token).ConfigureAwait(false);
            if (kvs.FirstOrDefault(kv => kv.Value.ToStringUtf8() == holder) is { } ours)
            {
                // An earlier attempt's create committed, its answer lost (a member died under it).
                string name = ours.Key.ToStringUtf8();
                return new ClusterSlot(Keys, name, $"{scope}/{name[prefix.Length..]}", ours.CreateRevision, hostSlot);
            }
            var taken = kvs.Select(kv => kv.Key.ToStringUtf8()[prefix.Length..]).ToHashSet(StringComparer.Ordinal);
            for (uint i = 0; i < limit; i++)
            {
                string index = i.ToString(CultureInfo.InvariantCulture);
                if (taken.Contains(index))
                {
                    continue;
                }
                long created = await Keys.TryCreateAsync(prefix + index, holder, LeaseId, linked.Token).ConfigureAwait(false);
                if (created > 0)
                {
                    return new ClusterSlot(Keys, prefix + index, $"{scope}/{index}", created, hostSlot);
                }
            }
            // All held: wait for a delete (a release or an expired lease), bounded so a missed event costs one TTL.
            await PrefixWatch.WaitAsync(Keys.Client.GetConnection().WatchClient, prefix, revision, Options.LeaseTtl, deletesOnly: true, linked.Token).ConfigureAwait(false);
        }
    }

    private void ThrowIfLost()
    {
        if (Lost.IsCancellationRequested)
        {
            throw new ClusterSessionLostException(Node);
        }
    }
}
