using System.Security.Cryptography;
using Grpc.Backup.Provider;

namespace Grpc.Backup.Providers.Directory.Internal;

/// <summary>
/// The SHA-256 of a whole volume as a restore will produce it (<c>VolumeCompleted.content_sha256</c>), computed while
/// the volume is stored: the copied chunks are hashed as they pass (in offset order: a chunk that finishes early waits
/// for its turn), and every range the copy does not read is filled in between: zero ranges (and a full backup's
/// unplanned ranges) as zeros, an incremental's clean ranges from the stored chain (<paramref name="readStored"/>: the
/// new overlay, which reads through to its base). So a full costs one extra pass of SHA-256 over the volume (holes
/// included) and no extra I/O; an incremental additionally reads its clean ranges from the repository.
/// </summary>
internal sealed class ContentHasher : IDisposable
{
    private const int FillChunk = 1024 * 1024;
    private static readonly byte[] Zeros = new byte[FillChunk];

    private readonly IncrementalHash _hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
    private readonly SemaphoreSlim _turn = new(1, 1);
    private readonly List<(long Offset, long Length, bool Stored)> _fills;
    private readonly Func<long, Memory<byte>, CancellationToken, ValueTask>? _readStored;
    private readonly long _size;
    private readonly int _readSize;
    private readonly int _readDepth;
    private byte[][]? _readBuffers;
    private int _nextFill;
    private long _position;
    private TaskCompletionSource _advanced = new(TaskCreationOptions.RunContinuationsAsynchronously);

    /// <param name="plan">The copy plan, ascending; Copy ranges are fed through <see cref="AppendAsync"/>.</param>
    /// <param name="incremental">Skipped (clean) ranges hold the base's data rather than zeros.</param>
    /// <param name="readStored">Reads what the archive already holds at a range (needed when <paramref name="incremental"/>).</param>
    /// <param name="readSize">Request size for reading stored ranges (qemu-nbd is fastest at 256-512 KiB).</param>
    /// <param name="readDepth">Stored-range reads in flight: one at a time leaves qemu-nbd idle between requests.</param>
    public ContentHasher(IReadOnlyList<PlannedExtent> plan, long size, bool incremental,
        Func<long, Memory<byte>, CancellationToken, ValueTask>? readStored, int readSize, int readDepth)
    {
        _size = size;
        _readSize = readSize;
        _readDepth = Math.Max(1, readDepth);
        _readStored = readStored;
        _fills = [];
        long next = 0;
        foreach (PlannedExtent extent in plan.Where(e => e.Action == ExtentAction.Copy))
        {
            AddFills(next, extent.Offset, plan, incremental);
            next = extent.End;
        }
        AddFills(next, size, plan, incremental);
    }

    /// <summary>Bytes of the volume hashed so far.</summary>
    public long Position => Volatile.Read(ref _position);

    /// <summary>Hashes a copied chunk once every byte before it is hashed; chunks of one plan never overlap.</summary>
    public async ValueTask AppendAsync(long offset, ReadOnlyMemory<byte> data, CancellationToken cancellationToken)
    {
        while (true)
        {
            Task advanced;
            await _turn.WaitAsync(cancellationToken);
            try
            {
                await FillUntilAsync(offset, cancellationToken);
                if (_position == offset)
                {
                    _hash.AppendData(data.Span);
                    Advance(data.Length);
                    return;
                }
                if (_position > offset)
                {
                    throw new InvalidOperationException($"chunk at {offset} arrived after the hash passed {_position}");
                }
                advanced = _advanced.Task;
            }
            finally
            {
                _turn.Release();
            }
            await advanced.WaitAsync(cancellationToken);
        }
    }

    /// <summary>Fills the rest of the volume and returns the lowercase hex digest.</summary>
    public async Task<string> FinishAsync(CancellationToken cancellationToken)
    {
        await _turn.WaitAsync(cancellationToken);
        try
        {
            await FillUntilAsync(_size, cancellationToken);
            if (_position != _size)
            {
                throw new InvalidOperationException($"the volume's hash stopped at {_position} of {_size} bytes: a copied chunk is missing");
            }
            return Convert.ToHexStringLower(_hash.GetHashAndReset());
        }
        finally
        {
            _turn.Release();
        }
    }

    public void Dispose()
    {
        _hash.Dispose();
        _turn.Dispose();
    }

    private void AddFills(long from, long to, IReadOnlyList<PlannedExtent> plan, bool incremental)
    {
        // Between two Copy ranges: Zero ranges read as zeros; Skip and unplanned ranges are the base's (incremental)
        // or holes (full).
        long at = from;
        foreach (PlannedExtent extent in plan.Where(e => e.Action != ExtentAction.Copy && e.End > from && e.Offset < to))
        {
            long start = Math.Max(extent.Offset, from);
            if (start > at)
            {
                Add(at, start - at, incremental);
            }
            long end = Math.Min(extent.End, to);
            Add(start, end - start, incremental && extent.Action == ExtentAction.Skip);
            at = end;
        }
        if (to > at)
        {
            Add(at, to - at, incremental);
        }
    }

    private void Add(long offset, long length, bool stored)
    {
        if (length <= 0)
        {
            return;
        }
        if (_fills.Count > 0 && _fills[^1] is var last && last.Offset + last.Length == offset && last.Stored == stored)
        {
            _fills[^1] = (last.Offset, last.Length + length, stored);
            return;
        }
        _fills.Add((offset, length, stored));
    }

    /// <summary>Hashes the fill ranges that start where the hash is, up to <paramref name="limit"/>.</summary>
    private async Task FillUntilAsync(long limit, CancellationToken cancellationToken)
    {
        while (_position < limit && _nextFill < _fills.Count && _fills[_nextFill].Offset == _position)
        {
            var (offset, length, stored) = _fills[_nextFill];
            if (stored)
            {
                await HashStoredAsync(offset, length, cancellationToken);
            }
            else
            {
                for (long done = 0; done < length; done += FillChunk)
                {
                    int part = (int)Math.Min(FillChunk, length - done);
                    _hash.AppendData(Zeros, 0, part);
                    Advance(part);
                }
            }
            _nextFill++;
        }
    }

    /// <summary>Reads a stored range with several requests in flight and hashes the pieces in order.</summary>
    private async Task HashStoredAsync(long offset, long length, CancellationToken cancellationToken)
    {
        _readBuffers ??= [.. Enumerable.Range(0, _readDepth).Select(_ => GC.AllocateUninitializedArray<byte>(_readSize))];
        // A buffer is reused only after its piece was dequeued and hashed: the queue is in issue order.
        var pending = new Queue<(Task Read, byte[] Buffer, int Length)>();
        long issued = 0;
        int slot = 0;
        try
        {
            while (issued < length || pending.Count > 0)
            {
                while (pending.Count < _readDepth && issued < length)
                {
                    int part = (int)Math.Min(_readSize, length - issued);
                    byte[] buffer = _readBuffers[slot++ % _readDepth];
                    pending.Enqueue((_readStored!(offset + issued, buffer.AsMemory(0, part), cancellationToken).AsTask(), buffer, part));
                    issued += part;
                }
                var (read, filled, filledLength) = pending.Dequeue();
                await read;
                _hash.AppendData(filled, 0, filledLength);
                Advance(filledLength);
            }
        }
        catch
        {
            // No read may still be filling a buffer once this returns.
            foreach (var (read, _, _) in pending)
            {
                await read.ContinueWith(_ => { }, CancellationToken.None, TaskContinuationOptions.None, TaskScheduler.Default);
            }
            throw;
        }
    }

    private void Advance(long length)
    {
        Volatile.Write(ref _position, _position + length);
        TaskCompletionSource advanced = _advanced;
        _advanced = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        advanced.SetResult();
    }
}
