using Grpc.Backup.Cluster.Internal;
using Grpc.Backup.Protocol;

namespace Grpc.Backup.Cluster;

/// <summary>
/// One held backup slot: a key bound to the holder's lease, created in a transaction guarded by
/// <c>create_revision == 0</c>. Its creation revision is the fencing token: etcd revisions only grow, so a later
/// holder of the same slot always has a larger token than any earlier one.
/// </summary>
public sealed class ClusterSlot : IAsyncDisposable
{
    private readonly EtcdKeys _keys;
    private int _released;

    internal ClusterSlot(EtcdKeys keys, string key, string slotName, long revision, ClusterSlot? hostSlot)
    {
        _keys = keys;
        Key = key;
        SlotName = slotName;
        Revision = revision;
        HostSlot = hostSlot;
    }

    /// <summary>The slot's key in etcd.</summary>
    public string Key { get; }

    /// <summary>The slot's name without the prefix, e.g. <c>storage/nfs1/0</c>.</summary>
    public string SlotName { get; }

    /// <summary>The key's create revision: the fencing token.</summary>
    public long Revision { get; }

    /// <summary>The per-host slot taken before this one, released with it; null when none was asked for.</summary>
    public ClusterSlot? HostSlot { get; }

    /// <summary>The token as a provider receives it in JobInit's options (<see cref="FencingToken.OptionName"/>).</summary>
    public FencingToken FencingToken => new(SlotName, Revision);

    /// <summary>
    /// Deletes the key if it is still this holder's (same create revision); a key that expired is left alone, and a slot
    /// whose session already ended has nothing left to delete.
    /// </summary>
    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _released, 1) == 0)
        {
            try
            {
                await _keys.DeleteIfCreatedAtAsync(Key, Revision).ConfigureAwait(false);
            }
            catch (ObjectDisposedException)
            {
                // The session ended first (lost, or closed): its lease is revoked or expiring, and the key goes with it.
            }
            finally
            {
                if (HostSlot is not null)
                {
                    await HostSlot.DisposeAsync().ConfigureAwait(false);
                }
            }
        }
    }
}
