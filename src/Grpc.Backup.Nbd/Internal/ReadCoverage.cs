using System.Globalization;

namespace Grpc.Backup.Nbd.Internal;

/// <summary>
/// Tracks which bytes of a READ the structured reply chunks have covered, so overlapping chunks
/// and "success" replies that left gaps are detected. Servers almost always send chunks in order,
/// which takes the allocation-free path; out-of-order chunks fall back to a list of merged
/// intervals whose size is capped, so a server cannot make bookkeeping quadratic.
/// </summary>
internal struct ReadCoverage
{
    /// <summary>Most disjoint covered intervals we track for one out-of-order READ reply.</summary>
    private const int MaxIntervals = 4096;

    private long _contiguousEnd;
    private List<(long Start, long End)>? _intervals;

    /// <summary>Total number of bytes covered so far (overlaps are rejected, so this is exact).</summary>
    public long Covered { get; private set; }

    public void Reset()
    {
        _contiguousEnd = 0;
        _intervals = null;
        Covered = 0;
    }

    /// <summary>Records [start, start+length) relative to the request offset.</summary>
    public void Add(long start, long length)
    {
        if (_intervals is null && start == _contiguousEnd)
        {
            _contiguousEnd += length;
            Covered += length;
            return;
        }

        if (_intervals is null)
        {
            _intervals = new List<(long, long)>();
            if (_contiguousEnd > 0)
            {
                _intervals.Add((0, _contiguousEnd));
            }
        }

        var end = start + length;
        var index = FindInsertionIndex(_intervals, start);
        var touchesPrevious = index > 0 && _intervals[index - 1].End >= start;
        var touchesNext = index < _intervals.Count && _intervals[index].Start <= end;
        if ((touchesPrevious && _intervals[index - 1].End > start) || (touchesNext && _intervals[index].Start < end))
        {
            throw new NbdProtocolException(string.Create(CultureInfo.InvariantCulture,
                $"Server sent overlapping READ chunks (relative range [{start}, {end}) was already covered)."));
        }

        // Merge with adjacent intervals so in-order runs after one out-of-order chunk stay cheap.
        if (touchesPrevious && touchesNext)
        {
            _intervals[index - 1] = (_intervals[index - 1].Start, _intervals[index].End);
            _intervals.RemoveAt(index);
        }
        else if (touchesPrevious)
        {
            _intervals[index - 1] = (_intervals[index - 1].Start, end);
        }
        else if (touchesNext)
        {
            _intervals[index] = (start, _intervals[index].End);
        }
        else
        {
            if (_intervals.Count == MaxIntervals)
            {
                throw new NbdProtocolException($"Server fragmented a READ reply into more than {MaxIntervals} disjoint out-of-order chunks.");
            }

            _intervals.Insert(index, (start, end));
        }

        Covered += length;
    }

    private static int FindInsertionIndex(List<(long Start, long End)> intervals, long start)
    {
        int low = 0, high = intervals.Count;
        while (low < high)
        {
            var mid = (low + high) / 2;
            if (intervals[mid].Start < start)
            {
                low = mid + 1;
            }
            else
            {
                high = mid;
            }
        }

        return low;
    }
}
