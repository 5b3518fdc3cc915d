namespace Grpc.Backup.Provider;

/// <summary>
/// Collects the ranges the copy loop has stored and TRIMs them in large contiguous pieces instead of one request per
/// chunk: every TRIM becomes a hole punch (and a journal transaction) on the host's fleecing image, so thousands of
/// small ones cost more than the copy. A run is trimmed once it reaches the threshold or ends where the volume's
/// trimmable area ends; <see cref="FlushAsync"/> trims the rest. Only stored ranges are ever added, so the union trimmed
/// is exactly what was stored. Thread-safe.
/// </summary>
public sealed class TrimBatcher(long threshold, IReadOnlySet<long> closingOffsets, Func<long, long, CancellationToken, Task> trim)
{
    private readonly Lock _lock = new();
    private readonly Dictionary<long, long> _endByStart = [];
    private readonly Dictionary<long, long> _startByEnd = [];

    /// <summary>
    /// The offsets where a trimmable area of <paramref name="plan"/> ends (before a skipped range or at the end): a run
    /// ending there cannot grow any more.
    /// </summary>
    public static HashSet<long> ClosingOffsets(IReadOnlyList<PlannedExtent> plan)
    {
        var closing = new HashSet<long>();
        for (int i = 0; i < plan.Count; i++)
        {
            if (plan[i].Action != ExtentAction.Skip && (i + 1 == plan.Count || plan[i + 1].Action == ExtentAction.Skip))
            {
                closing.Add(plan[i].End);
            }
        }
        return closing;
    }

    public Task AddAsync(long offset, long length, CancellationToken cancellationToken)
    {
        long start = offset;
        long end = offset + length;
        lock (_lock)
        {
            if (_startByEnd.Remove(start, out long before))
            {
                _endByStart.Remove(before);
                start = before;
            }
            if (_endByStart.Remove(end, out long after))
            {
                _startByEnd.Remove(after);
                end = after;
            }
            if (end - start < threshold && !closingOffsets.Contains(end))
            {
                _endByStart[start] = end;
                _startByEnd[end] = start;
                return Task.CompletedTask;
            }
        }
        return trim(start, end - start, cancellationToken);
    }

    /// <summary>Trims every run still held; call when no more ranges will be added.</summary>
    public async Task FlushAsync(CancellationToken cancellationToken)
    {
        List<KeyValuePair<long, long>> runs;
        lock (_lock)
        {
            runs = [.. _endByStart.OrderBy(r => r.Key)];
            _endByStart.Clear();
            _startByEnd.Clear();
        }
        foreach ((long start, long end) in runs)
        {
            await trim(start, end - start, cancellationToken);
        }
    }
}
