using System.Threading.RateLimiting;

namespace Grpc.Backup.Protocol;

/// <summary>
/// Paces a byte stream to a bandwidth limit with a token bucket (one token per byte). The bucket holds one
/// replenishment period's worth, so a stall is never followed by a burst of more than that.
/// </summary>
public sealed class BandwidthThrottle : IAsyncDisposable
{
    private readonly TokenBucketRateLimiter? _limiter;
    private readonly int _tokenLimit;

    public BandwidthThrottle(ulong bytesPerSecond)
    {
        if (bytesPerSecond == 0)
        {
            return;
        }
        // 10 refills a second are smooth; below 1 kB/s a whole second per refill keeps integer tokens exact enough.
        (TimeSpan period, ulong perPeriod) = bytesPerSecond >= 1000
            ? (TimeSpan.FromMilliseconds(100), bytesPerSecond / 10)
            : (TimeSpan.FromSeconds(1), bytesPerSecond);
        _tokenLimit = (int)Math.Min(perPeriod, int.MaxValue);
        _limiter = new TokenBucketRateLimiter(new TokenBucketRateLimiterOptions
        {
            TokenLimit = _tokenLimit,
            TokensPerPeriod = _tokenLimit,
            ReplenishmentPeriod = period,
            QueueLimit = _tokenLimit,
            QueueProcessingOrder = QueueProcessingOrder.OldestFirst,
            AutoReplenishment = true,
        });
    }

    /// <summary>The largest chunk worth writing at once: one bucket (or <paramref name="preferred"/> if unlimited).</summary>
    public int ChunkSize(int preferred) => _limiter is null ? preferred : Math.Min(preferred, _tokenLimit);

    /// <summary>Waits until <paramref name="bytes"/> may pass.</summary>
    public async ValueTask WaitAsync(int bytes, CancellationToken cancellationToken)
    {
        if (_limiter is null)
        {
            return;
        }
        while (bytes > 0)
        {
            int take = Math.Min(bytes, _tokenLimit);
            using RateLimitLease lease = await _limiter.AcquireAsync(take, cancellationToken);
            if (!lease.IsAcquired)
            {
                // Only one writer waits at a time, so the queue cannot be full; fail loudly rather than go unthrottled.
                throw new InvalidOperationException("bandwidth throttle refused a lease");
            }
            bytes -= take;
        }
    }

    public ValueTask DisposeAsync() => _limiter?.DisposeAsync() ?? ValueTask.CompletedTask;
}
