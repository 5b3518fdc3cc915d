using System.Diagnostics;

namespace Grpc.Backup.Bench;

/// <summary>Latencies of repeated calls, and their percentiles.</summary>
internal sealed class LatencySample
{
    private readonly double[] _seconds;

    private LatencySample(double[] seconds)
    {
        _seconds = seconds;
        Array.Sort(_seconds);
    }

    public double Percentile(double p) => _seconds[Math.Min(_seconds.Length - 1, (int)Math.Ceiling(p / 100 * _seconds.Length) - 1)];

    /// <summary>The median of per-round figures.</summary>
    public static double Median(List<double> values)
    {
        values.Sort();
        return values[values.Count / 2];
    }

    public static async Task<LatencySample> MeasureAsync(Func<Task> call, int warmup, int count)
    {
        for (int i = 0; i < warmup; i++)
        {
            await call();
        }
        var seconds = new double[count];
        for (int i = 0; i < count; i++)
        {
            long start = Stopwatch.GetTimestamp();
            await call();
            seconds[i] = Stopwatch.GetElapsedTime(start).TotalSeconds;
        }
        return new LatencySample(seconds);
    }
}
