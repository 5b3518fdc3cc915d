using System.Diagnostics;
using System.Globalization;

namespace Grpc.Backup.Orchestrator;

/// <summary>
/// Where one backup's or restore's time went, phase by phase, in the order the phases first ran (issue 16: see where
/// the time goes). A phase measured twice adds up. Backups record init (BackupInit to BackupVmQueryIncremental),
/// quiesce (the agent's freeze), setup (snapshot access without the freeze), copy (the provider's BackupVm stream),
/// teardown and commit (BackupCleanup and the bitmaps' settlement); restores record init, copy and convert. The
/// provider's own phases (hashing, trimming, flushing) are inside copy and commit; it reports them in its log.
/// </summary>
public sealed class PhaseTimings
{
    private readonly List<KeyValuePair<string, TimeSpan>> _phases = [];
    private readonly Lock _lock = new();

    /// <summary>The phases, in the order they first ran.</summary>
    public IReadOnlyList<KeyValuePair<string, TimeSpan>> Phases
    {
        get
        {
            lock (_lock)
            {
                return _phases.ToArray();
            }
        }
    }

    /// <summary>The time recorded for <paramref name="phase"/>, zero if it did not run.</summary>
    public TimeSpan this[string phase] => Phases.FirstOrDefault(p => p.Key == phase).Value;

    /// <summary>Adds <paramref name="elapsed"/> to <paramref name="phase"/>.</summary>
    public void Add(string phase, TimeSpan elapsed)
    {
        ArgumentException.ThrowIfNullOrEmpty(phase);
        lock (_lock)
        {
            int index = _phases.FindIndex(p => p.Key == phase);
            if (index < 0)
            {
                _phases.Add(new(phase, elapsed));
            }
            else
            {
                _phases[index] = new(phase, _phases[index].Value + elapsed);
            }
        }
    }

    /// <summary>Times the phase until the result is disposed (on every path, so a failed phase shows its cost too).</summary>
    public Measurement Measure(string phase) => new(this, phase, Stopwatch.GetTimestamp());

    /// <summary>"init 0.12 s, setup 0.80 s, ..." for logs and the bench.</summary>
    public override string ToString() => string.Join(", ",
        Phases.Select(p => string.Create(CultureInfo.InvariantCulture, $"{p.Key} {p.Value.TotalSeconds:0.00} s")));

    /// <summary>One running measurement; disposing it records the elapsed time.</summary>
    public readonly struct Measurement(PhaseTimings owner, string phase, long started) : IDisposable
    {
        public void Dispose() => owner?.Add(phase, Stopwatch.GetElapsedTime(started));
    }
}
