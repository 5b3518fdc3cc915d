namespace Grpc.Backup.Nbd.Tests.Fuzzing;

/// <summary>
/// What the guarded snapshot must read as: the disk's content at the snapshot's instant, except the clusters a client
/// trimmed (QEMU's snapshot-access node then refuses to read them). A trim is modelled as the guard must pass it on,
/// rounded inward to whole clusters, so a neighbouring cluster that reads as anything but its snapshot bytes fails.
/// </summary>
internal sealed class SnapshotModel
{
    private readonly byte[] _content;
    private readonly bool[] _trimmed;
    private readonly Lock _gate = new();

    public SnapshotModel(byte[] content, int cluster)
    {
        _content = content;
        Cluster = cluster;
        _trimmed = new bool[(content.Length + cluster - 1) / cluster];
    }

    public long Size => _content.Length;

    public int Cluster { get; }

    public double TrimmedFraction
    {
        get
        {
            lock (_gate)
            {
                return (double)_trimmed.Count(t => t) / _trimmed.Length;
            }
        }
    }

    /// <summary>Marks the whole clusters inside [offset, offset + length) as trimmed.</summary>
    public void Trim(long offset, long length)
    {
        lock (_gate)
        {
            for (var c = (offset + Cluster - 1) / Cluster; c < (offset + length) / Cluster; c++)
            {
                _trimmed[c] = true;
            }
        }
    }

    /// <summary>Whether [offset, offset + length) overlaps a trimmed cluster (reads there may fail).</summary>
    public bool TouchesTrimmed(long offset, long length)
    {
        lock (_gate)
        {
            for (var c = offset / Cluster; c < (offset + length + Cluster - 1) / Cluster && c < _trimmed.Length; c++)
            {
                if (_trimmed[c])
                {
                    return true;
                }
            }

            return false;
        }
    }

    /// <summary>Checks bytes read at <paramref name="offset"/> against the snapshot; trimmed clusters may read as anything.</summary>
    public void Check(long offset, ReadOnlySpan<byte> data, string what)
    {
        if (offset < 0 || offset > Size || data.Length > Size - offset)
        {
            throw new FuzzViolation($"{what}: {data.Length} bytes at {offset} lie outside the {Size}-byte export");
        }

        var end = offset + data.Length;
        for (var position = offset; position < end;)
        {
            var cluster = position / Cluster;
            var next = Math.Min((cluster + 1) * Cluster, end);
            bool trimmed;
            lock (_gate)
            {
                trimmed = _trimmed[cluster];
            }

            if (!trimmed && !data.Slice((int)(position - offset), (int)(next - position)).SequenceEqual(_content.AsSpan((int)position, (int)(next - position))))
            {
                throw new FuzzViolation($"{what}: bytes {position}..{next} differ from the snapshot's");
            }

            position = next;
        }
    }

    /// <summary>The untrimmed stretches of the export, each at most <paramref name="maxLength"/> bytes.</summary>
    public List<(long Offset, int Length)> UntrimmedRuns(int maxLength)
    {
        var runs = new List<(long, int)>();
        lock (_gate)
        {
            var c = 0;
            while (c < _trimmed.Length)
            {
                if (_trimmed[c])
                {
                    c++;
                    continue;
                }

                var start = (long)c * Cluster;
                var length = 0L;
                while (c < _trimmed.Length && !_trimmed[c] && length + Cluster <= maxLength)
                {
                    length = Math.Min((long)(c + 1) * Cluster, Size) - start;
                    c++;
                }

                runs.Add((start, (int)length));
            }
        }

        return runs;
    }
}
