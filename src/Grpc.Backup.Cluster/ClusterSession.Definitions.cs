using Grpc.Backup.Cluster.Internal;

namespace Grpc.Backup.Cluster;

/// <summary>The administrator's job and storage definitions (<c>config/</c>), read and watched by every host.</summary>
public sealed partial class ClusterSession
{
    /// <summary>The definitions applied now, and the etcd revision this read saw (where to watch from).</summary>
    public async Task<(ClusterDefinitionFiles Definitions, long ReadRevision)> ReadDefinitionsAsync(CancellationToken cancellationToken = default)
    {
        var (kvs, revision) = await Keys.RangeAsync(Key("config/"), cancellationToken).ConfigureAwait(false);
        return (ClusterDefinitions.FromRange(Options.KeyPrefix, kvs), revision);
    }

    /// <summary>
    /// Waits until the definitions change after <paramref name="readRevision"/> (an apply), for at most
    /// <paramref name="bound"/>; the caller reads again either way.
    /// </summary>
    public Task WaitForDefinitionsAsync(long readRevision, TimeSpan bound, CancellationToken cancellationToken = default) =>
        PrefixWatch.WaitAsync(Keys.Client.GetConnection().WatchClient, Key("config/"), readRevision, bound, deletesOnly: false, cancellationToken);
}
