using System.Security.Cryptography;
using Grpc.Backup.Protocol;

namespace Grpc.Backup.Provider;

/// <summary>
/// A volume's <see cref="ChunkDigestList"/> (<c>VolumeCompleted.digest</c>), computed while the volume is stored along
/// its copy plan: copied pieces are hashed as they pass (in offset order: a piece that finishes early waits for its
/// turn), and what the copy does not read is filled in. A chunk the copy does not touch costs no hashing and no read:
/// zeros (a full backup's holes and Zero ranges) take the precomputed zero digest, an incremental's clean chunk takes
/// its base's digest (<c>baseList</c>). Only a chunk the copy touches in part is completed from zeros or, for its clean
/// parts, from the stored chain (<c>readStored</c>), so an incremental reads at most its dirty data rounded out to
/// chunks. Without a base list (a base made before chunk digests) clean chunks are read from the chain as well.
/// </summary>
public sealed class ChunkDigester : IDisposable
{
    private const int ZeroFill = 1024 * 1024;
    private static readonly byte[] Zeros = new byte[ZeroFill];

    private readonly IncrementalHash _hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
    private readonly SemaphoreSlim _turn = new(1, 1);
    private readonly List<(long Offset, long Length, bool Stored)> _fills = [];
    private readonly Func<long, Memory<byte>, CancellationToken, ValueTask>? _readStored;
    private readonly ChunkDigestList? _base;
    private readonly ChunkDigestList _list;
    private readonly long _size;
    private readonly int _readSize;
    private readonly int _readDepth;
    private byte[][]? _readBuffers;
    private int _nextFill;
    private long _position;
    private long _storedBytesRead;
    private TaskCompletionSource _advanced = new(TaskCreationOptions.RunContinuationsAsynchronously);

    /// <param name="plan">The copy plan, ascending; Copy ranges are fed through <see cref="AppendAsync"/>.</param>
    /// <param name="size">The volume's size.</param>
    /// <param name="incremental">Skipped (clean) ranges hold the base's data rather than zeros.</param>
    /// <param name="baseList">The base's chunk list (incremental), or null when the base has none.</param>
    /// <param name="readStored">Reads what the stored chain holds at a range (needed when <paramref name="incremental"/>).</param>
    /// <param name="readSize">Request size for reading stored ranges.</param>
    /// <param name="readDepth">Stored-range reads in flight.</param>
    public ChunkDigester(IReadOnlyList<PlannedExtent> plan, long size, bool incremental, ChunkDigestList? baseList,
        Func<long, Memory<byte>, CancellationToken, ValueTask>? readStored, int readSize, int readDepth)
    {
        if (baseList is not null && baseList.VolumeSize != size)
        {
            throw new ArgumentException($"the base's chunk list covers {baseList.VolumeSize} bytes, the volume has {size}", nameof(baseList));
        }
        _size = size;
        _list = new ChunkDigestList(size);
        _base = incremental ? baseList : null;
        _readSize = readSize;
        _readDepth = Math.Max(1, readDepth);
        _readStored = readStored;
        long next = 0;
        foreach (PlannedExtent extent in plan.Where(e => e.Action == ExtentAction.Copy))
        {
            AddFills(next, extent.Offset, plan, incremental);
            next = extent.End;
        }
        AddFills(next, size, plan, incremental);
    }

    /// <summary>Bytes of the volume digested so far.</summary>
    public long Position => Volatile.Read(ref _position);

    /// <summary>Bytes read from the stored chain to complete partly dirty chunks (or clean ones without a base list).</summary>
    public long StoredBytesRead => Volatile.Read(ref _storedBytesRead);

    /// <summary>Hashes a copied piece once every byte before it is digested; pieces of one plan never overlap.</summary>
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
                    Hash(data.Span);
                    return;
                }
                if (_position > offset)
                {
                    throw new InvalidOperationException($"a piece at {offset} arrived after the digest passed {_position}");
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

    /// <summary>Fills the rest of the volume and returns its chunk list.</summary>
    public async Task<ChunkDigestList> FinishAsync(CancellationToken cancellationToken)
    {
        await _turn.WaitAsync(cancellationToken);
        try
        {
            await FillUntilAsync(_size, cancellationToken);
            if (_position != _size)
            {
                throw new InvalidOperationException($"the volume's digest stopped at {_position} of {_size} bytes: a copied piece is missing");
            }
            return _list;
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

    /// <summary>Digests the fill ranges that start where the digest is, up to <paramref name="limit"/>.</summary>
    private async Task FillUntilAsync(long limit, CancellationToken cancellationToken)
    {
        while (_position < limit && _nextFill < _fills.Count && _fills[_nextFill].Offset == _position)
        {
            var (offset, length, stored) = _fills[_nextFill];
            long end = offset + length;
            while (_position < end)
            {
                int chunk = (int)(_position / ChunkDigestList.ChunkSize);
                long chunkStart = (long)chunk * ChunkDigestList.ChunkSize;
                long chunkEnd = chunkStart + _list.LengthOf(chunk);
                if (_position == chunkStart && end >= chunkEnd && (!stored || _base is not null))
                {
                    // A whole chunk this backup did not touch.
                    if (stored)
                    {
                        _list.Set(chunk, _base![chunk]);
                    }
                    else
                    {
                        _list.SetZero(chunk);
                    }
                    Advance(chunkEnd - chunkStart);
                    continue;
                }
                // Up to the chunk's end, so the next chunk may be a whole one; a clean range without a base list is
                // read in one run.
                long part = Math.Min(end, stored && _base is null ? end : chunkEnd) - _position;
                if (stored)
                {
                    await HashStoredAsync(_position, part, cancellationToken);
                }
                else
                {
                    for (long done = 0; done < part; done += ZeroFill)
                    {
                        Hash(Zeros.AsSpan(0, (int)Math.Min(ZeroFill, part - done)));
                    }
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
                Interlocked.Add(ref _storedBytesRead, filledLength);
                Hash(filled.AsSpan(0, filledLength));
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

    /// <summary>Hashes bytes at the digest's position, closing each chunk it completes.</summary>
    private void Hash(ReadOnlySpan<byte> data)
    {
        Span<byte> digest = stackalloc byte[ChunkDigestList.DigestSize];
        while (!data.IsEmpty)
        {
            int chunk = (int)(_position / ChunkDigestList.ChunkSize);
            long chunkEnd = (long)chunk * ChunkDigestList.ChunkSize + _list.LengthOf(chunk);
            int part = (int)Math.Min(data.Length, chunkEnd - _position);
            _hash.AppendData(data[..part]);
            data = data[part..];
            if (_position + part == chunkEnd)
            {
                _hash.GetHashAndReset(digest);
                _list.Set(chunk, digest);
            }
            Advance(part);
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
