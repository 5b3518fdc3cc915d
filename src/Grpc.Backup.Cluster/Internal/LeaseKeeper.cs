using Etcdserverpb;
using Grpc.Core;
using Microsoft.Extensions.Logging;

namespace Grpc.Backup.Cluster.Internal;

/// <summary>
/// Keeps one lease alive over etcd's LeaseKeepAlive stream, a request every third of the TTL. The lease counts as lost
/// once etcd answers TTL 0 (it expired or was revoked), or when no renewal succeeded for a whole TTL (etcd unreachable:
/// from then on the server may have expired it, so the holder must assume it did). Lost is final: a session whose
/// lease is lost does not come back; the owner starts a new one.
/// </summary>
internal sealed class LeaseKeeper : IAsyncDisposable
{
    private readonly Lease.LeaseClient _client;
    private readonly long _leaseId;
    private readonly TimeSpan _ttl;
    private readonly ILogger _logger;
    private readonly CancellationTokenSource _stop = new();
    private readonly CancellationTokenSource _lost = new();
    private readonly Task _loop;
    private long _lastRenewedTicks;

    public LeaseKeeper(Lease.LeaseClient client, long leaseId, TimeSpan ttl, ILogger logger)
    {
        _client = client;
        _leaseId = leaseId;
        _ttl = ttl;
        _logger = logger;
        _lastRenewedTicks = Environment.TickCount64;
        _loop = Task.WhenAll(Task.Run(RunAsync), Task.Run(WatchAsync));
    }

    /// <summary>Cancelled when the lease is lost.</summary>
    public CancellationToken Lost => _lost.Token;

    /// <summary>Test seam: stops renewing without revoking, as a host that froze or died would.</summary>
    internal async Task StopRenewingAsync()
    {
        await _stop.CancelAsync().ConfigureAwait(false);
        await _loop.ConfigureAwait(false);
    }

    private async Task RunAsync()
    {
        TimeSpan interval = _ttl / 3;
        while (!_stop.IsCancellationRequested && !_lost.IsCancellationRequested)
        {
            try
            {
                // The call ends with the loop's stop or the lost lease; each renewal below is bounded on its own, so a
                // member that froze (its connection open, nothing answering) costs one interval, not forever.
                using var callEnd = CancellationTokenSource.CreateLinkedTokenSource(_stop.Token, _lost.Token);
                using AsyncDuplexStreamingCall<LeaseKeepAliveRequest, LeaseKeepAliveResponse> call = _client.LeaseKeepAlive(cancellationToken: callEnd.Token);
                while (!_stop.IsCancellationRequested)
                {
                    using var answer = CancellationTokenSource.CreateLinkedTokenSource(callEnd.Token);
                    answer.CancelAfter(interval);
                    await call.RequestStream.WriteAsync(new LeaseKeepAliveRequest { ID = _leaseId }, answer.Token).ConfigureAwait(false);
                    if (!await call.ResponseStream.MoveNext(answer.Token).ConfigureAwait(false))
                    {
                        break;
                    }
                    if (call.ResponseStream.Current.TTL <= 0)
                    {
                        _logger.LogWarning("etcd lease {Lease:x} expired or was revoked", _leaseId);
                        await _lost.CancelAsync().ConfigureAwait(false);
                        return;
                    }
                    Interlocked.Exchange(ref _lastRenewedTicks, Environment.TickCount64);
                    await Task.Delay(interval, _stop.Token).ConfigureAwait(false);
                }
            }
            catch (Exception e) when (e is RpcException or OperationCanceledException or IOException
                && (_stop.IsCancellationRequested || _lost.IsCancellationRequested))
            {
                // Stopped, or the watch declared the lease lost: the call was cancelled under us.
                return;
            }
            catch (Exception e) when (e is RpcException or OperationCanceledException or IOException)
            {
                _logger.LogWarning("etcd lease {Lease:x} keepalive failed: {Error}", _leaseId, e.Message);
            }
            try
            {
                // (WatchAsync declares the lease lost after a TTL without renewal.) Another member may answer: the client's channel balances over every endpoint.
                await Task.Delay(TimeSpan.FromMilliseconds(200), _stop.Token).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                return;
            }
        }
    }

    /// <summary>
    /// Declares the lease lost once no renewal succeeded for a whole TTL, whatever the keepalive stream is doing: a
    /// frozen etcd can leave a call neither answering nor failing.
    /// </summary>
    private async Task WatchAsync()
    {
        TimeSpan tick = _ttl / 10;
        try
        {
            while (!_lost.IsCancellationRequested)
            {
                await Task.Delay(tick, _stop.Token).ConfigureAwait(false);
                if (Environment.TickCount64 - Interlocked.Read(ref _lastRenewedTicks) >= (long)_ttl.TotalMilliseconds)
                {
                    _logger.LogWarning("etcd lease {Lease:x} not renewed for {Ttl} s: taken as lost", _leaseId, _ttl.TotalSeconds);
                    await _lost.CancelAsync().ConfigureAwait(false);
                }
            }
        }
        catch (OperationCanceledException)
        {
        }
    }

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync().ConfigureAwait(false);
        await _loop.ConfigureAwait(false);
        _stop.Dispose();
        _lost.Dispose();
    }
}
