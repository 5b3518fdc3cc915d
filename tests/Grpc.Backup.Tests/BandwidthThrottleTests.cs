using System.Diagnostics;
using Grpc.Backup.Protocol;

namespace Grpc.Backup.Tests;

/// <summary>The one byte-rate pacer shared by the host's restore copy, container streams and the providers.</summary>
public sealed class BandwidthThrottleTests
{
    [Fact]
    public async Task Concurrent_callers_together_stay_under_the_limit()
    {
        const ulong limit = 1 << 20;
        const int callers = 4;
        const int grants = 24;
        const int grant = 32 * 1024;
        var throttle = new BandwidthThrottle(limit);
        var clock = Stopwatch.StartNew();
        await Task.WhenAll(Enumerable.Range(0, callers).Select(_ => Task.Run(async () =>
        {
            for (int i = 0; i < grants; i++)
            {
                await throttle.WaitAsync(grant, CancellationToken.None);
            }
        })));
        // 3 MiB at 1 MiB/s: at least 3 s less the tenth of a second of burst. Slower is allowed (a starved CPU).
        double total = (double)callers * grants * grant;
        double rate = total / clock.Elapsed.TotalSeconds;
        Assert.True(rate <= limit * 1.05, $"{total} bytes passed at {rate / limit:F3} × the limit");
    }

    [Fact]
    public void Unlimited_never_waits()
    {
        var throttle = new BandwidthThrottle(0);
        Assert.True(throttle.IsUnlimited);
        Assert.True(throttle.WaitAsync(long.MaxValue / 2, CancellationToken.None).IsCompletedSuccessfully);
        Assert.Equal(256 * 1024, throttle.ChunkSize(256 * 1024));
    }

    [Fact]
    public async Task A_wait_ends_when_cancelled()
    {
        // 1 byte/s: 100 bytes would wait more than a minute and a half.
        var throttle = new BandwidthThrottle(1);
        using var cancel = new CancellationTokenSource();
        Task wait = throttle.WaitAsync(100, cancel.Token);
        Assert.False(wait.IsCompleted);
        await cancel.CancelAsync();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => wait);
    }

    [Theory]
    [InlineData(10UL << 20, 256 * 1024, 256 * 1024)]
    [InlineData(512UL * 1024, 256 * 1024, 52428)]
    [InlineData(5UL, 4096, 1)]
    public void A_chunk_is_at_most_one_burst(ulong bytesPerSecond, int preferred, int expected)
    {
        Assert.Equal(expected, new BandwidthThrottle(bytesPerSecond).ChunkSize(preferred));
    }
}
