using V3Electionpb;

namespace Grpc.Backup.Cluster;

/// <summary>
/// Won leadership of an election (the scheduler's): the leader key is bound to the session's lease, so it ends when the
/// session does. <see cref="Revision"/> is the leader key's create revision, a fencing token for what the leader does.
/// </summary>
public sealed class ClusterLeadership : IAsyncDisposable
{
    private readonly ClusterSession _session;
    private readonly LeaderKey _leader;
    private int _resigned;

    internal ClusterLeadership(ClusterSession session, LeaderKey leader)
    {
        _session = session;
        _leader = leader;
    }

    public string Election => _leader.Name.ToStringUtf8();

    public long Revision => _leader.Rev;

    /// <summary>Resigns, so another candidate is elected at once (rather than after the lease expires).</summary>
    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _resigned, 1) == 0 && !_session.Lost.IsCancellationRequested)
        {
            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(10));
            await Internal.EtcdRetry.RunAsync(token => _session.Keys.Client.ResignAsync(new ResignRequest { Leader = _leader }, cancellationToken: token), timeout.Token)
                .ConfigureAwait(false);
        }
    }
}
