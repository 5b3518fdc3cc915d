using System.Text.Json;
using System.Text.Json.Nodes;

namespace Grpc.Backup.Qemu.Internal;

/// <summary>
/// Splits the QMP byte stream into newline-terminated JSON objects. QEMU writes exactly one message
/// per line (terminated by CRLF), so a line is the unit of framing; the size bound applies per line.
/// Not thread-safe: only the client's single reader loop (or the handshake before it) uses it.
/// </summary>
internal sealed class QmpMessageReader
{
    private const int InitialBufferSize = 4096;

    // Replies such as query-qmp-schema run to hundreds of KiB; keep a big buffer only while needed.
    private const int RetainedBufferSize = 64 * 1024;

    private static readonly JsonDocumentOptions s_documentOptions = new()
    {
        // QEMU's own JSON parser allows 1024 levels; the default 64 is too few for the nested
        // backing-image chains of query-named-block-nodes on a long qcow2 chain.
        MaxDepth = 1024,

        // Duplicate keys would otherwise surface later as ArgumentException deep inside callers.
        AllowDuplicateProperties = false,
    };

    private readonly Stream _stream;
    private readonly int _maxMessageBytes;
    private byte[] _buffer;
    private int _start;   // first unconsumed byte
    private int _end;     // one past the last received byte
    private int _scanned; // bytes after _start already known to hold no line feed

    public QmpMessageReader(Stream stream, int maxMessageBytes)
    {
        _stream = stream;
        _maxMessageBytes = maxMessageBytes;
        _buffer = new byte[InitialBufferSize];
    }

    /// <summary>Returns the next message, or null when the peer closed the stream cleanly.</summary>
    /// <exception cref="QmpProtocolException">Malformed JSON, a non-object, or an over-long line.</exception>
    public async ValueTask<JsonObject?> ReadAsync(CancellationToken cancellationToken)
    {
        while (true)
        {
            if (TryReadMessage(out JsonObject? message))
            {
                return message;
            }

            MakeRoom();
            int read = await _stream.ReadAsync(_buffer.AsMemory(_end), cancellationToken);
            if (read == 0)
            {
                if (!IsWhiteSpace(_buffer.AsSpan(_start, _end - _start)))
                {
                    throw new QmpProtocolException("The QMP peer closed the connection in the middle of a message.");
                }

                return null;
            }

            _end += read;
        }
    }

    private bool TryReadMessage(out JsonObject? message)
    {
        while (true)
        {
            int lineFeed = _buffer.AsSpan(_start + _scanned, _end - _start - _scanned).IndexOf((byte)'\n');
            if (lineFeed < 0)
            {
                _scanned = _end - _start;
                if (_scanned > _maxMessageBytes)
                {
                    throw TooLong();
                }

                message = null;
                return false;
            }

            int length = _scanned + lineFeed;
            ReadOnlySpan<byte> line = _buffer.AsSpan(_start, length);
            _start += length + 1;
            _scanned = 0;

            if (length > _maxMessageBytes)
            {
                throw TooLong();
            }

            // Blank lines carry nothing; tolerate them rather than treating them as malformed JSON.
            if (!IsWhiteSpace(line))
            {
                message = Parse(line);
                return true;
            }
        }
    }

    private void MakeRoom()
    {
        int pending = _end - _start;
        if (pending == 0)
        {
            _start = _end = 0;
            if (_buffer.Length > RetainedBufferSize)
            {
                _buffer = new byte[InitialBufferSize];
            }

            return;
        }

        if (_end < _buffer.Length)
        {
            return;
        }

        // Grow when mostly full, so a long message costs amortized O(n) copying rather than a
        // compaction per read. One byte beyond the limit is enough to prove a line is too long.
        int size = _buffer.Length;
        if (pending > size / 2)
        {
            size = (int)Math.Min(2L * size, _maxMessageBytes + 1L);
        }

        byte[] target = size == _buffer.Length ? _buffer : new byte[size];
        _buffer.AsSpan(_start, pending).CopyTo(target);
        _buffer = target;
        _start = 0;
        _end = pending;
    }

    private static JsonObject Parse(ReadOnlySpan<byte> line)
    {
        JsonNode? node;
        try
        {
            node = JsonNode.Parse(line, documentOptions: s_documentOptions);
        }
        catch (JsonException ex)
        {
            throw new QmpProtocolException($"The QMP peer sent malformed JSON: {ex.Message}", ex);
        }

        return node as JsonObject
            ?? throw new QmpProtocolException($"The QMP peer sent a JSON {node?.GetValueKind().ToString() ?? "null"} where an object was expected.");
    }

    private static bool IsWhiteSpace(ReadOnlySpan<byte> bytes) => bytes.IndexOfAnyExcept(" \t\r\n"u8) < 0;

    private QmpProtocolException TooLong()
        => new($"The QMP peer sent a message longer than the limit of {_maxMessageBytes} bytes.");
}
