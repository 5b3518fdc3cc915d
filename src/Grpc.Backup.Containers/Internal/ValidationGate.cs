using Grpc.Backup.Protocol;

namespace Grpc.Backup.Containers.Internal;

/// <summary>
/// The stream <see cref="System.Formats.Tar.TarReader"/> reads from during a restore. It keeps every byte read until
/// the validator releases it, so tar (the sink) receives only bytes whose header has been accepted: header bytes once
/// their member is validated, data bytes as they are read for a member already accepted. Validation and extraction
/// read one and the same stream, once: there is no second read of the archive that a provider could change in
/// between (no TOCTOU), no private copy, and pipes work.
/// </summary>
/// <remarks>
/// While a member's headers are being read, the gate also walks the raw header chain itself (pax 'x' and GNU 'L'/'K'
/// blocks, then the member's own header): it verifies each checksum, refuses metadata larger than the limit before
/// TarReader allocates a buffer for it, and notes where the chain ends, which the validator compares with where
/// TarReader says the member starts. An all-zero block where a header is expected is the end-of-archive marker.
/// </remarks>
internal sealed class ValidationGate(Stream inner, int maxMetadataSize) : ReadOnlyStream
{
    private readonly List<char> _chain = [];
    private byte[] _pending = new byte[128 * 1024];
    private int _pendingLength;
    private long _pendingStart;
    private long _position;
    private bool _walking;
    private long _cursor;

    /// <summary>The metadata header types ('x', 'L', 'K') before the current member's header, in order.</summary>
    public IReadOnlyList<char> MetadataChain => _chain;

    /// <summary>Where the current member's own header ends, or -1 while it has not been read.</summary>
    public long MainHeaderEnd { get; private set; } = -1;

    /// <summary>The current member's raw type flag.</summary>
    public char MainType { get; private set; }

    /// <summary>The current member's raw size field.</summary>
    public long MainSize { get; private set; }

    /// <summary>Where the current member's headers start.</summary>
    public long HeaderStart { get; private set; }

    /// <summary>An all-zero block was found where the next header should be.</summary>
    public bool SawEndMarker { get; private set; }

    public override long Position
    {
        get => _position;
        set => throw new NotSupportedException();
    }

    /// <summary>Starts walking a member's header chain at <paramref name="position"/> (a block boundary).</summary>
    public void BeginHeaders(long position)
    {
        _walking = true;
        _cursor = position;
        HeaderStart = position;
        _chain.Clear();
        MainHeaderEnd = -1;
        MainType = '\0';
        MainSize = 0;
        Walk();
    }

    /// <summary>Sends pending bytes before <paramref name="upTo"/> to <paramref name="sink"/> (if any) and forgets them.</summary>
    public async Task ReleaseAsync(long upTo, Stream? sink, BandwidthThrottle? throttle, CancellationToken cancellationToken)
    {
        int count = Take(upTo);
        if (count == 0)
        {
            return;
        }
        if (sink is not null)
        {
            if (throttle is not null)
            {
                await throttle.WaitAsync(count, cancellationToken);
            }
            await sink.WriteAsync(_pending.AsMemory(0, count), cancellationToken);
        }
        Drop(count);
    }

    /// <summary>Clears the setuid/setgid bits in the current member's own header, which is still pending; false if its mode is unreadable.</summary>
    public bool TryClearSetIdBits()
    {
        long start = MainHeaderEnd - TarHeaderBlock.Size;
        if (MainHeaderEnd < 0 || start < _pendingStart)
        {
            throw new InvalidOperationException("the member's header is no longer pending");
        }
        return TarHeaderBlock.TryClearSetIdBits(_pending.AsSpan((int)(start - _pendingStart), TarHeaderBlock.Size));
    }

    /// <summary>Forgets pending bytes before <paramref name="upTo"/> without sending them (a member left out).</summary>
    public void Discard(long upTo) => Drop(Take(upTo));

    /// <summary>The pending bytes from <paramref name="from"/> on (to check what follows the end marker).</summary>
    public ReadOnlySpan<byte> PendingFrom(long from) =>
        from >= _position ? [] : _pending.AsSpan((int)(from - _pendingStart), (int)(_position - from));

    public override int Read(Span<byte> buffer)
    {
        int read = inner.Read(buffer);
        Record(buffer[..read]);
        return read;
    }

    public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        int read = await inner.ReadAsync(buffer, cancellationToken);
        Record(buffer.Span[..read]);
        return read;
    }

    private void Record(ReadOnlySpan<byte> data)
    {
        if (data.IsEmpty)
        {
            return;
        }
        // Bounded: header phases are limited by the metadata check, data is released chunk by chunk.
        long limit = (long)maxMetadataSize + (1 << 20);
        if ((long)_pendingLength + data.Length > limit)
        {
            throw new TarArchiveRejectedException($"more than {limit} bytes of archive metadata at offset {_pendingStart}");
        }
        if (_pendingLength + data.Length > _pending.Length)
        {
            Array.Resize(ref _pending, (int)Math.Min(limit, Math.Max(_pending.Length * 2L, (long)_pendingLength + data.Length)));
        }
        data.CopyTo(_pending.AsSpan(_pendingLength));
        _pendingLength += data.Length;
        _position += data.Length;
        Walk();
    }

    private void Walk()
    {
        while (_walking && _cursor + TarHeaderBlock.Size <= _position)
        {
            ReadOnlySpan<byte> block = _pending.AsSpan((int)(_cursor - _pendingStart), TarHeaderBlock.Size);
            if (TarHeaderBlock.IsZero(block))
            {
                SawEndMarker = true;
                _walking = false;
                return;
            }
            if (!TarHeaderBlock.HasValidChecksum(block))
            {
                throw new TarArchiveRejectedException(
                    $"the header at offset {_cursor} has a bad checksum (GNU tar would skip ahead to whatever looks like the next header)");
            }
            char type = TarHeaderBlock.TypeFlag(block);
            if (!TarHeaderBlock.TryParseSize(block, out long size))
            {
                throw new TarArchiveRejectedException($"the header at offset {_cursor} has an unreadable size field");
            }
            if (type is 'x' or 'L' or 'K' or 'g')
            {
                if (size > maxMetadataSize)
                {
                    throw new TarArchiveRejectedException(
                        $"the '{type}' metadata header at offset {_cursor} declares {size} bytes, more than the limit of {maxMetadataSize}");
                }
            }
            if (type is 'x' or 'L' or 'K')
            {
                _chain.Add(type);
                _cursor += TarHeaderBlock.Size + TarHeaderBlock.Align(size);
                continue;
            }
            MainType = type;
            MainSize = size;
            MainHeaderEnd = _cursor + TarHeaderBlock.Size;
            _walking = false;
        }
    }

    private int Take(long upTo)
    {
        if (upTo < _pendingStart || upTo > _position)
        {
            throw new InvalidOperationException($"release to {upTo} outside the pending range {_pendingStart}..{_position}");
        }
        if (_walking && upTo > _cursor)
        {
            throw new InvalidOperationException("bytes of an unvalidated header cannot be released");
        }
        return (int)(upTo - _pendingStart);
    }

    private void Drop(int count)
    {
        _pending.AsSpan(count, _pendingLength - count).CopyTo(_pending);
        _pendingLength -= count;
        _pendingStart += count;
    }
}
