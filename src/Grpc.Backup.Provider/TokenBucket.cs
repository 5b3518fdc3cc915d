using System.Diagnostics;

namespace Grpc.Backup.Provider;

/// <summary>
/// Paces reads to a byte rate (BackupVmStart.bandwidth_limit). A virtual clock advances by bytes / rate for each
/// grant; a caller waits while the clock is ahead of real time by more than a short burst, so the average rate holds
/// whatever the request sizes, and short bursts keep the pipeline busy. Thread-safe.
/// </summary>
public sealed class TokenBucket
{
    private static readonly TimeSpan Burst = TimeSpan.FromMilliseconds(200);

    private readonly double _bytesPerTick;
    private readonly Lock _lock = new();
    private long _virtualClock;

    /// <param name="bytesPerSecond">0 means unlimited.</param>
    public TokenBucket(ulong bytesPerSecond)
    {
        _bytesPerTick = bytesPerSecond / (double)Stopwatch.Frequency;
        _virtualClock = Stopwatch.GetTimestamp();
    }

    public bool IsUnlimited => _bytesPerTick == 0;

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
            // An idle period does not build up credit beyond the burst.
            _virtualClock = Math.Max(_virtualClock, now - (long)(Burst.TotalSeconds * Stopwatch.Frequency));
            _virtualClock += (long)(bytes / _bytesPerTick);
            due = _virtualClock - (long)(Burst.TotalSeconds * Stopwatch.Frequency);
        }
        TimeSpan wait = Stopwatch.GetElapsedTime(now, due);
        return wait > TimeSpan.Zero ? Task.Delay(wait, cancellationToken) : Task.CompletedTask;
    }
}
