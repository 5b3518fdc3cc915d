using System.Diagnostics;
using System.Globalization;
using System.Text;

namespace Grpc.Backup.Nbd.Tests.Fuzzing;

/// <summary>
/// Runs fuzz cases <c>seed</c>, <c>seed + 1</c>, … against epochs of <see cref="FuzzEnvironment"/>: one snapshot and
/// guard serve cases until a fifth of it is trimmed, then the epoch ends with its full check and a new one starts. A
/// failing case is recorded with its seed and ends its epoch. It replays alone (<c>build/fuzz --seed S --cases 1</c>),
/// or with the cases of its epoch before it, on the same snapshot (from the epoch's first seed).
/// </summary>
internal sealed class NbdFuzzRun
{
    /// <summary>Failures after which the run stops: something is broken, and more cases would only repeat it.</summary>
    private const int MaxFailures = 10;

    /// <summary>Every this many cases the oracle reads the whole snapshot, not a sample.</summary>
    private const int FullCheckEvery = 25;

    /// <summary>A snapshot this much trimmed fails most reads; the next cases get a fresh one.</summary>
    private const double MaxTrimmed = 0.2;

    private readonly List<(int Seed, string Replay, Exception Error)> _failures = [];
    private readonly FuzzStats _stats = new();
    private int _cases;
    private int _epochs;
    private long _guestWrites;
    private long _maxBytesInFlight;
    private long _maxQemuGrowth;

    public IReadOnlyList<(int Seed, string Replay, Exception Error)> Failures => _failures;

    public int Cases => _cases;

    public static async Task<NbdFuzzRun> RunAsync(int cases, int seed)
    {
        var run = new NbdFuzzRun();
        var clock = Stopwatch.StartNew();
        FuzzEnvironment? environment = null;
        var epochStart = seed;
        for (var i = 0; i < cases && run._failures.Count < MaxFailures; i++)
        {
            var caseSeed = unchecked(seed + i);
            if (environment is null)
            {
                environment = await FuzzEnvironment.StartAsync(caseSeed);
                epochStart = caseSeed;
                run._epochs++;
            }

            try
            {
                await NbdFuzzer.RunCaseAsync(environment, caseSeed, run._stats);
                await environment.VerifyAsync(new Random(caseSeed), full: (i + 1) % FullCheckEvery == 0);
            }
            catch (Exception ex)
            {
                run._failures.Add((caseSeed, $"build/fuzz --seed {caseSeed} --cases 1, or on its snapshot: --seed {epochStart} --cases {unchecked(caseSeed - epochStart) + 1}", ex));
                await run.EndEpochAsync(environment, epochStart, caseSeed, verify: false);
                environment = null;
            }

            run._cases++;
            if (environment is not null && (environment.Model.TrimmedFraction > MaxTrimmed || i == cases - 1))
            {
                await run.EndEpochAsync(environment, epochStart, caseSeed, verify: true);
                environment = null;
            }
        }

        run.Elapsed = clock.Elapsed;
        run.Seed = seed;
        return run;
    }

    public TimeSpan Elapsed { get; private set; }

    public int Seed { get; private set; }

    /// <summary>A summary line, then one line per failure with its seed.</summary>
    public string Report()
    {
        var text = new StringBuilder();
        text.Append(CultureInfo.InvariantCulture,
            $"nbd fuzz: seed {Seed}, {_cases} cases in {Elapsed.TotalSeconds:F1} s, {_failures.Count} failed; {_epochs} snapshots, ")
            .Append(CultureInfo.InvariantCulture,
                $"{_guestWrites} guest writes during the fuzz, at most {_maxBytesInFlight >> 20} MiB in flight in the guard over all connections (cap {FuzzEnvironment.MaxBytesInFlight >> 20} MiB per connection), ")
            .Append(CultureInfo.InvariantCulture, $"QEMU RSS growth at most {_maxQemuGrowth >> 20} MiB").AppendLine()
            .Append(_stats).AppendLine();
        foreach (var (seed, replay, error) in _failures)
        {
            text.Append(CultureInfo.InvariantCulture, $"FAILED seed {seed} (replay: {replay}): {Describe(error)}").AppendLine();
        }

        return text.ToString();
    }

    private static string Describe(Exception error)
    {
        var text = $"{error.GetType().Name}: {error.Message}";
        if (error is not FuzzViolation)
        {
            // Not a judgement but an exception in the fuzzer's own step: where it was.
            var frame = error.StackTrace?.Split('\n').FirstOrDefault(l => l.Contains("Fuzzing.", StringComparison.Ordinal));
            text += frame is null ? "" : $" ({frame.Trim()})";
        }

        return error.InnerException is { } inner ? $"{text} <- {Describe(inner)}" : text;
    }

    private async Task EndEpochAsync(FuzzEnvironment environment, int seed, int lastSeed, bool verify)
    {
        var replay = $"build/fuzz --seed {seed} --cases {unchecked(lastSeed - seed) + 1}";
        try
        {
            if (verify)
            {
                await environment.FinishAsync();
            }

            _guestWrites += environment.GuestWrites;
            _maxBytesInFlight = Math.Max(_maxBytesInFlight, environment.MaxBytesInFlightSeen);
            if (environment.Qemu.IsRunning)
            {
                _maxQemuGrowth = Math.Max(_maxQemuGrowth, environment.QemuGrowth);
            }
        }
        catch (Exception ex)
        {
            _failures.Add((seed, replay, new FuzzViolation($"the snapshot of cases {seed}..{lastSeed}, at its end", ex)));
        }
        finally
        {
            try
            {
                await environment.DisposeAsync();
            }
            catch (Exception ex)
            {
                _failures.Add((seed, replay, ex));
            }
        }
    }
}
