using dotnet_etcd;
using Etcdserverpb;
using Grpc.Backup.Cluster.Internal;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Grpc.Backup.Cluster;

/// <summary>
/// This host's membership of the cluster: one etcd lease, kept alive, that every key the host writes is bound to
/// (its node key, its guest registrations, its slots, its election candidacy). When the host dies the lease expires
/// within its TTL and all of them go at once; a clean shutdown revokes it at once.
/// </summary>
public sealed partial class ClusterSession : IAsyncDisposable
{
    private readonly EtcdKeys _keys;
    private readonly LeaseKeeper _keeper;
    private readonly ILogger _logger;
    private int _disposed;

    private ClusterSession(ClusterOptions options, EtcdClient client, long leaseId, ILogger logger)
    {
        Options = options;
        _keys = new EtcdKeys(client);
        LeaseId = leaseId;
        _logger = logger;
        _keeper = new LeaseKeeper(client.GetConnection().LeaseClient, leaseId, options.LeaseTtl, logger);
    }

    public ClusterOptions Options { get; }

    public string Node => Options.Node;

    /// <summary>The session's lease id.</summary>
    public long LeaseId { get; }

    /// <summary>
    /// Cancelled once the lease is lost (expired, revoked, or not renewed for a whole TTL). From then on this host may
    /// hold nothing: no new backup starts under this session.
    /// </summary>
    public CancellationToken Lost => _keeper.Lost;

    /// <summary>Connects, grants the lease and registers the node (<c>nodes/NODE</c>).</summary>
    public static async Task<ClusterSession> ConnectAsync(ClusterOptions options, ILogger? logger = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(options);
        EtcdClient client = EtcdClientFactory.Create(options);
        ClusterSession? session = null;
        try
        {
            LeaseGrantResponse grant = await EtcdRetry.RunAsync(token => client.LeaseGrantAsync(
                new LeaseGrantRequest { TTL = (long)Math.Ceiling(options.LeaseTtl.TotalSeconds) }, cancellationToken: token), cancellationToken).ConfigureAwait(false);
            if (!string.IsNullOrEmpty(grant.Error))
            {
                throw new InvalidOperationException($"etcd refused a lease: {grant.Error}");
            }
            session = new ClusterSession(options, client, grant.ID, logger ?? NullLogger.Instance);
            await session._keys.PutAsync(session.Key("nodes/" + options.Node), session.NodeValue(0), session.LeaseId, cancellationToken).ConfigureAwait(false);
            return session;
        }
        catch
        {
            if (session is not null)
            {
                // Refused (e.g. etcd's auth: this certificate's user is not that node): the lease is revoked at once
                // and the client disposed with the session.
                await session.DisposeAsync().ConfigureAwait(false);
            }
            else
            {
                client.Dispose();
            }
            throw;
        }
    }

    /// <summary>The nodes whose sessions are alive now.</summary>
    public async Task<IReadOnlyList<string>> ListNodesAsync(CancellationToken cancellationToken = default)
    {
        string prefix = Key("nodes/");
        var (kvs, _) = await _keys.RangeAsync(prefix, cancellationToken).ConfigureAwait(false);
        return [.. kvs.Select(kv => kv.Key.ToStringUtf8()[prefix.Length..])];
    }

    internal string Key(string relative) => Options.KeyPrefix + relative;

    internal EtcdKeys Keys => _keys;

    /// <summary>Test seam: the host freezes: the lease is no longer renewed and expires by itself.</summary>
    internal Task StopRenewingAsync() => _keeper.StopRenewingAsync();

    /// <summary>Stops the keepalive and revokes the lease: every key of this host goes at once.</summary>
    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }
        await _keeper.DisposeAsync().ConfigureAwait(false);
        try
        {
            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(5));
            await EtcdRetry.RunAsync(token => _keys.Client.LeaseRevokeAsync(new LeaseRevokeRequest { ID = LeaseId }, cancellationToken: token), timeout.Token).ConfigureAwait(false);
        }
        catch (Exception e) when (e is Grpc.Core.RpcException or OperationCanceledException)
        {
            // etcd unreachable: the lease expires by itself within its TTL.
            _logger.LogWarning("revoking etcd lease {Lease:x} failed: {Error}", LeaseId, e.Message);
        }
        _keys.Client.Dispose();
    }
}
