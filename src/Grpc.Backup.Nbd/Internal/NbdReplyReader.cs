using System.Buffers.Binary;
using System.Globalization;
using System.Net.Sockets;
using System.Runtime.CompilerServices;
using System.Text;

namespace Grpc.Backup.Nbd.Internal;

/// <summary>
/// The single loop that reads every reply of a connection and routes it, by cookie, to the
/// request it answers. Everything the server sends is validated against what that request
/// asked for; any violation fails the whole connection with <see cref="NbdProtocolException"/>.
/// </summary>
internal sealed class NbdReplyReader
{
    /// <summary>
    /// Cap on descriptors in one BLOCK_STATUS chunk. Real servers send far fewer (QEMU and
    /// nbdkit cap replies around a million); the cap bounds what a hostile server makes us allocate.
    /// </summary>
    private const long MaxExtentsPerChunk = 2 * 1024 * 1024;

    private readonly NbdSocketReader _in;
    private readonly NbdRequestTable _table;
    private readonly bool _structured;
    private readonly IReadOnlyList<NbdMetaContext> _contexts;

    public NbdReplyReader(NbdSocketReader input, NbdRequestTable table, bool structuredReplies, IReadOnlyList<NbdMetaContext> contexts)
    {
        _in = input;
        _table = table;
        _structured = structuredReplies;
        _contexts = contexts;
    }

    /// <summary>Runs until the connection fails or is closed; never throws.</summary>
    public async Task RunAsync()
    {
        try
        {
            while (_table.Failure is null)
            {
                await ReadReplyAsync();
            }
        }
        catch (Exception ex)
        {
            _table.Fail(ex switch
            {
                IOException => ex,
                SocketException or ObjectDisposedException => new IOException($"The NBD connection failed: {ex.Message}", ex),
                _ => new IOException($"The NBD reply reader failed: {ex.Message}", ex),
            });
        }
    }

    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder))]
    private async ValueTask ReadReplyAsync()
    {
        await _in.EnsureAsync(4, CancellationToken.None);
        var magic = BinaryPrimitives.ReadUInt32BigEndian(_in.Peek(4));
        if (magic == NbdProtocol.SimpleReplyMagic)
        {
            await ReadSimpleReplyAsync();
        }
        else if (magic == NbdProtocol.StructuredReplyMagic)
        {
            if (!_structured)
            {
                throw Protocol("Server sent a structured reply although structured replies were not negotiated.");
            }

            await ReadStructuredChunkAsync();
        }
        else
        {
            throw Protocol($"Invalid reply magic 0x{magic:x8}.");
        }
    }

    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder))]
    private async ValueTask ReadSimpleReplyAsync()
    {
        await _in.EnsureAsync(NbdProtocol.SimpleReplySize, CancellationToken.None);
        var header = _in.Peek(NbdProtocol.SimpleReplySize);
        var error = BinaryPrimitives.ReadUInt32BigEndian(header[4..]);
        var cookie = BinaryPrimitives.ReadUInt64BigEndian(header[8..]);
        _in.Advance(NbdProtocol.SimpleReplySize);

        var request = Lookup(cookie);
        if (request.Command == NbdCommand.Read && _structured)
        {
            throw Protocol("Server sent a simple reply to READ although structured replies were negotiated.");
        }

        if (error != 0)
        {
            _table.Finish(request, CommandError(request, error, null, null));
            return;
        }

        if (request.Command == NbdCommand.BlockStatus)
        {
            throw Protocol("Server answered BLOCK_STATUS with a simple reply; a structured reply is required.");
        }

        if (request.Command == NbdCommand.Read)
        {
            // Without structured replies the data follows the header, exactly as long as requested.
            await ReceivePayloadAsync(request, 0, (int)request.Length);
        }

        _table.Finish(request, null);
    }

    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder))]
    private async ValueTask ReadStructuredChunkAsync()
    {
        await _in.EnsureAsync(NbdProtocol.StructuredReplySize, CancellationToken.None);
        var header = _in.Peek(NbdProtocol.StructuredReplySize);
        var flags = BinaryPrimitives.ReadUInt16BigEndian(header[4..]);
        var type = BinaryPrimitives.ReadUInt16BigEndian(header[6..]);
        var cookie = BinaryPrimitives.ReadUInt64BigEndian(header[8..]);
        var length = BinaryPrimitives.ReadUInt32BigEndian(header[16..]);
        _in.Advance(NbdProtocol.StructuredReplySize);

        var request = Lookup(cookie);
        var done = (flags & NbdProtocol.ReplyFlagDone) != 0;
        switch ((NbdReplyType)type)
        {
            case NbdReplyType.None:
                if (length != 0)
                {
                    throw Protocol($"NBD_REPLY_TYPE_NONE chunk has length {length}, expected 0.");
                }

                if (!done)
                {
                    throw Protocol("NBD_REPLY_TYPE_NONE chunk without the DONE flag.");
                }

                break;

            case NbdReplyType.OffsetData:
                await ReadOffsetDataAsync(request, length);
                break;

            case NbdReplyType.OffsetHole:
                await ReadOffsetHoleAsync(request, length);
                break;

            case NbdReplyType.BlockStatus:
                await ReadBlockStatusAsync(request, length);
                break;

            default:
                if ((type & NbdProtocol.ReplyTypeErrorBit) == 0)
                {
                    throw Protocol($"Unexpected structured reply type {type} to {NbdErrno.CommandName(request.Command)}.");
                }

                // Known and unknown error types share the errno/message prefix.
                await ReadErrorAsync(request, type, length);
                break;
        }

        if (done)
        {
            Complete(request);
        }
    }

    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder))]
    private async ValueTask ReadOffsetDataAsync(NbdRequest request, uint length)
    {
        ExpectCommand(request, NbdCommand.Read, "NBD_REPLY_TYPE_OFFSET_DATA");
        if (length < 9)
        {
            throw Protocol($"NBD_REPLY_TYPE_OFFSET_DATA chunk has length {length}, expected at least 9.");
        }

        await _in.EnsureAsync(8, CancellationToken.None);
        var offset = BinaryPrimitives.ReadUInt64BigEndian(_in.Peek(8));
        _in.Advance(8);
        var count = length - 8;
        var relative = CheckWithinRequest(request, offset, count, "NBD_REPLY_TYPE_OFFSET_DATA");
        request.Coverage.Add(relative, count);
        await ReceivePayloadAsync(request, (int)relative, (int)count);
    }

    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder))]
    private async ValueTask ReadOffsetHoleAsync(NbdRequest request, uint length)
    {
        ExpectCommand(request, NbdCommand.Read, "NBD_REPLY_TYPE_OFFSET_HOLE");
        if (length != 12)
        {
            throw Protocol($"NBD_REPLY_TYPE_OFFSET_HOLE chunk has length {length}, expected 12.");
        }

        await _in.EnsureAsync(12, CancellationToken.None);
        var payload = _in.Peek(12);
        var offset = BinaryPrimitives.ReadUInt64BigEndian(payload);
        var count = BinaryPrimitives.ReadUInt32BigEndian(payload[8..]);
        _in.Advance(12);
        if (count == 0)
        {
            throw Protocol("NBD_REPLY_TYPE_OFFSET_HOLE chunk with a zero hole size.");
        }

        var relative = CheckWithinRequest(request, offset, count, "NBD_REPLY_TYPE_OFFSET_HOLE");
        request.Coverage.Add(relative, count);
        if (_table.BeginReaderWrite(request))
        {
            try
            {
                request.ReadBuffer.Span.Slice((int)relative, (int)count).Clear();
            }
            finally
            {
                _table.EndReaderWrite(request);
            }
        }
    }

    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder))]
    private async ValueTask ReadBlockStatusAsync(NbdRequest request, uint length)
    {
        ExpectCommand(request, NbdCommand.BlockStatus, "NBD_REPLY_TYPE_BLOCK_STATUS");
        if (length < 12 || (length - 4) % 8 != 0)
        {
            throw Protocol($"NBD_REPLY_TYPE_BLOCK_STATUS chunk has length {length}, expected 4 + a positive multiple of 8.");
        }

        long descriptors = (length - 4) / 8;
        if (descriptors > MaxExtentsPerChunk)
        {
            throw Protocol($"NBD_REPLY_TYPE_BLOCK_STATUS chunk carries {descriptors} extents, more than the {MaxExtentsPerChunk} accepted.");
        }

        if ((request.Flags & NbdProtocol.CommandFlagReqOne) != 0 && descriptors != 1)
        {
            throw Protocol($"Server sent {descriptors} extents although only one was requested.");
        }

        await _in.EnsureAsync(4, CancellationToken.None);
        var contextId = BinaryPrimitives.ReadUInt32BigEndian(_in.Peek(4));
        _in.Advance(4);

        var contextIndex = IndexOfContext(contextId);
        var bit = 1UL << contextIndex;
        if ((request.ContextsSeen & bit) != 0)
        {
            throw Protocol($"Server sent block status for meta context id {contextId} twice in one reply.");
        }

        request.ContextsSeen |= bit;
        var isTarget = contextId == request.ContextId;
        if (isTarget)
        {
            request.TargetContextSeen = true;
        }

        var cursor = request.Offset;
        var end = request.Offset + request.Length;
        var batchLimit = _in.Capacity / 8;
        while (descriptors > 0)
        {
            var batch = (int)Math.Min(descriptors, batchLimit);
            await _in.EnsureAsync(batch * 8, CancellationToken.None);
            cursor = ParseExtents(_in.Peek(batch * 8), cursor, end, isTarget ? request.Extents : null);
            _in.Advance(batch * 8);
            descriptors -= batch;
        }
    }

    private static long ParseExtents(ReadOnlySpan<byte> data, long cursor, long end, List<NbdExtent>? extents)
    {
        for (var i = 0; i < data.Length; i += 8)
        {
            var length = BinaryPrimitives.ReadUInt32BigEndian(data[i..]);
            var flags = BinaryPrimitives.ReadUInt32BigEndian(data[(i + 4)..]);
            if (length == 0)
            {
                throw Protocol("Server sent a zero-length block status extent.");
            }

            if (cursor >= end)
            {
                throw Protocol(string.Create(CultureInfo.InvariantCulture,
                    $"Server sent block status extents beyond the requested range (request ends at {end})."));
            }

            // Some servers describe a final extent past the requested end; keep the part we asked
            // about. Any extent after it then trips the cursor >= end check above.
            var clipped = Math.Min(length, end - cursor);
            extents?.Add(new NbdExtent(cursor, clipped, flags));
            cursor += clipped;
        }

        return cursor;
    }

    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder))]
    private async ValueTask ReadErrorAsync(NbdRequest request, ushort type, uint length)
    {
        var withOffset = type == (ushort)NbdReplyType.ErrorOffset;
        var minimum = withOffset ? 14u : 6u;
        if (length < minimum)
        {
            throw Protocol($"Error chunk of type {type} has length {length}, expected at least {minimum}.");
        }

        await _in.EnsureAsync(6, CancellationToken.None);
        var errno = BinaryPrimitives.ReadUInt32BigEndian(_in.Peek(6));
        var messageLength = BinaryPrimitives.ReadUInt16BigEndian(_in.Peek(6)[4..]);
        _in.Advance(6);
        if (errno == 0)
        {
            throw Protocol($"Error chunk of type {type} carries error value 0.");
        }

        if (messageLength > length - minimum)
        {
            throw Protocol($"Error chunk message length {messageLength} does not fit in chunk length {length}.");
        }

        var isKnown = type is (ushort)NbdReplyType.Error or (ushort)NbdReplyType.ErrorOffset;
        if (isKnown && length != minimum + messageLength)
        {
            throw Protocol($"Error chunk of type {type} has length {length}, expected {minimum + messageLength}.");
        }

        string? message = null;
        if (messageLength > 0)
        {
            await _in.EnsureAsync(messageLength, CancellationToken.None);

            // Lossy decoding: the text is only for humans and must not mask the actual error.
            message = Encoding.UTF8.GetString(_in.Peek(messageLength));
            _in.Advance(messageLength);
        }

        long? errorOffset = null;
        if (withOffset)
        {
            await _in.EnsureAsync(8, CancellationToken.None);
            var offset = BinaryPrimitives.ReadUInt64BigEndian(_in.Peek(8));
            _in.Advance(8);
            CheckWithinRequest(request, offset, 1, "NBD_REPLY_TYPE_ERROR_OFFSET");
            errorOffset = (long)offset;
        }
        else if (!isKnown)
        {
            await _in.SkipAsync(length - minimum - messageLength, CancellationToken.None);
        }

        request.Error ??= CommandError(request, errno, message, errorOffset);
    }

    private void Complete(NbdRequest request)
    {
        if (request.Error is null)
        {
            if (request.Command == NbdCommand.Read && request.Coverage.Covered != request.Length)
            {
                throw Protocol(string.Create(CultureInfo.InvariantCulture,
                    $"Server reported READ success but sent only {request.Coverage.Covered} of {request.Length} bytes."));
            }

            if (request.Command == NbdCommand.BlockStatus && !request.TargetContextSeen)
            {
                throw Protocol($"Server completed BLOCK_STATUS without status for meta context id {request.ContextId}.");
            }
        }

        _table.Finish(request, request.Error);
    }

    /// <summary>Receives payload bytes into the request's buffer, or discards them if the caller gave up.</summary>
    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder))]
    private async ValueTask ReceivePayloadAsync(NbdRequest request, int relativeOffset, int count)
    {
        if (_table.BeginReaderWrite(request))
        {
            try
            {
                await _in.ReadExactAsync(request.ReadBuffer.Slice(relativeOffset, count), CancellationToken.None);
            }
            finally
            {
                _table.EndReaderWrite(request);
            }
        }
        else
        {
            await _in.SkipAsync(count, CancellationToken.None);
        }
    }

    private NbdRequest Lookup(ulong cookie) =>
        _table.Find(cookie) ?? throw Protocol($"Server sent a reply for unknown cookie 0x{cookie:x16}.");

    private int IndexOfContext(uint id)
    {
        for (var i = 0; i < _contexts.Count; i++)
        {
            if (_contexts[i].Id == id)
            {
                return i;
            }
        }

        throw Protocol($"Server sent block status for meta context id {id}, which was never negotiated.");
    }

    private static void ExpectCommand(NbdRequest request, NbdCommand expected, string chunkType)
    {
        if (request.Command != expected)
        {
            throw Protocol($"Server sent a {chunkType} chunk in reply to {NbdErrno.CommandName(request.Command)}.");
        }
    }

    /// <summary>Checks [offset, offset+count) lies inside the request; returns the offset relative to it.</summary>
    private static long CheckWithinRequest(NbdRequest request, ulong offset, uint count, string chunkType)
    {
        var start = (ulong)request.Offset;
        if (offset < start || offset - start > request.Length || count > request.Length - (offset - start))
        {
            throw Protocol(string.Create(CultureInfo.InvariantCulture,
                $"Server sent a {chunkType} chunk for [{offset}, {offset + count}) outside the requested range [{request.Offset}, {request.Offset + request.Length})."));
        }

        return (long)(offset - start);
    }

    private static NbdException CommandError(NbdRequest request, uint errno, string? message, long? errorOffset) =>
        new(request.Command, request.Offset, request.Length, unchecked((int)errno), message, errorOffset);

    private static NbdProtocolException Protocol(string message) => new(message);
}
