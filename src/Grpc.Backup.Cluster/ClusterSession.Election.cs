using Google.Protobuf;
using V3Electionpb;

namespace Grpc.Backup.Cluster;

/// <summary>Elections (etcd's Election service) with the session's own lease, never a server-chosen one.</summary>
public sealed partial class ClusterSession
{
    /// <summary>Waits until this node leads <paramref name="election"/> (e.g. <c>scheduler</c>).</summary>
    public async Task<ClusterLeadership> CampaignAsync(string election, CancellationToken cancellationToken = default)
    {
        ThrowIfLost();
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, Lost);
        var request = new CampaignRequest
        {
            Name = ByteString.CopyFromUtf8(Key("election/" + election)),
            Lease = LeaseId,
            Value = ByteString.CopyFromUtf8(Node),
        };
        // A campaign with the same lease is idempotent in etcd: a retry finds the key the first attempt made.
        // It blocks until this host leads: no bound on one attempt.
        CampaignResponse response = await Internal.EtcdRetry.RunAsync(token => Keys.Client.CampaignAsync(request, cancellationToken: token), linked.Token, bounded: false)
            .ConfigureAwait(false);
        return new ClusterLeadership(this, response.Leader);
    }

    /// <summary>The node leading <paramref name="election"/> now, or null when nobody does.</summary>
    public async Task<string?> LeaderAsync(string election, CancellationToken cancellationToken = default)
    {
        try
        {
            var request = new LeaderRequest { Name = ByteString.CopyFromUtf8(Key("election/" + election)) };
            LeaderResponse response = await Internal.EtcdRetry.RunAsync(token => Keys.Client.LeaderAsync(request, cancellationToken: token), cancellationToken)
                .ConfigureAwait(false);
            return response.Kv?.Value.ToStringUtf8();
        }
        catch (Grpc.Core.RpcException e) when (e.Status.Detail.Contains("no leader", StringComparison.Ordinal))
        {
            return null;
        }
    }
}
