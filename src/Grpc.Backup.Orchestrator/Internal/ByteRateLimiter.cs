using System.Diagnostics;

namespace Grpc.Backup.Orchestrator.Internal;

/// <summary>
/// The host's restore bandwidth limit, as a virtual clock: each grant moves the clock on by bytes / rate, and a caller
/// waits while the clock is more than a tenth of a second ahead of real time. Late timer wake-ups are absorbed, so the
/// average holds exactly. (System.Threading.RateLimiting's token bucket adds a fixed amount per timer tick, and on this
/// 2-core machine its ticks came late enough to hold copies 13% under the limit.) Thread-safe.
/// </summary>
internal sealed class ByteRateLimiter(ulong bytesPerSecond) : IDisposable
{
    private static readonly long Burst = Stopwatch.Frequency / 10;

    private readonly double _ticksPerByte = Stopwatch.Frequency / (double)bytesPerSecond;
    private readonly Lock _lock = new();
    private long _clock = Stopwatch.GetTimestamp();

    public Task AcquireAsync(int bytes, CancellationToken cancellationToken)
    {
        long now = Stopwatch.GetTimestamp();
        long due;
        lock (_lock)
        {
            // An idle period builds up no more credit than the burst.
            _clock = Math.Max(_clock, now - Burst) + (long)(bytes * _ticksPerByte);
            due = _clock - Burst;
        }
        TimeSpan wait = Stopwatch.GetElapsedTime(now, due);
        return wait > TimeSpan.Zero ? Task.Delay(wait, cancellationToken) : Task.CompletedTask;
    }

    public void Dispose()
    {
    }
}
