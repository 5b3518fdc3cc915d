using System.Diagnostics;

namespace Grpc.Backup.Protocol;

/// <summary>
/// The one byte-rate pacer (host restores, container tar streams, providers' snapshot reads): a virtual clock moves on
/// by bytes / rate for each grant, and a caller waits while the clock is more than a tenth of a second ahead of real
/// time. Late timer wake-ups are absorbed, so the average holds exactly whatever the request sizes, and an idle period
/// builds up no more credit than that tenth of a second. (System.Threading.RateLimiting's token bucket adds a fixed
/// amount per timer tick; on a loaded 2-core machine its ticks came late enough to hold copies 13% under the limit.)
/// Thread-safe.
/// </summary>
public sealed class BandwidthThrottle
{
    /// <summary>How far ahead of real time the clock may run before callers wait: the largest burst.</summary>
    private static readonly long Burst = Stopwatch.Frequency / 10;

    private readonly ulong _bytesPerSecond;
    private readonly double _ticksPerByte;
    private readonly Lock _lock = new();
    private long _clock;

    /// <param name="bytesPerSecond">0 means unlimited.</param>
    public BandwidthThrottle(ulong bytesPerSecond)
    {
        _bytesPerSecond = bytesPerSecond;
        _ticksPerByte = bytesPerSecond == 0 ? 0 : Stopwatch.Frequency / (double)bytesPerSecond;
        _clock = Stopwatch.GetTimestamp();
    }

    public bool IsUnlimited => _bytesPerSecond == 0;

    /// <summary>
    /// The largest chunk worth passing at once: one burst's worth (at least 1 byte), or <paramref name="preferred"/>
    /// if unlimited, so that a slow limit is paced smoothly rather than in large steps.
    /// </summary>
    public int ChunkSize(int preferred) =>
        IsUnlimited ? preferred : (int)Math.Clamp(_bytesPerSecond / 10, 1, (ulong)Math.Max(preferred, 1));

    /// <summary>Waits until <paramref name="bytes"/> may pass.</summary>
    public Task WaitAsync(long bytes, CancellationToken cancellationToken)
    {
        if (IsUnlimited || bytes <= 0)
        {
            return Task.CompletedTask;
        }
        long now = Stopwatch.GetTimestamp();
        long due;
        lock (_lock)
        {
            _clock = Math.Max(_clock, now - Burst) + (long)(bytes * _ticksPerByte);
            due = _clock - Burst;
        }
        TimeSpan wait = Stopwatch.GetElapsedTime(now, due);
        return wait > TimeSpan.Zero ? Task.Delay(wait, cancellationToken) : Task.CompletedTask;
    }
}
