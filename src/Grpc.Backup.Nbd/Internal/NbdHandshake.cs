using System.Buffers.Binary;
using System.Globalization;
using System.Net.Sockets;
using System.Text;

namespace Grpc.Backup.Nbd.Internal;

/// <summary>
/// Client side of the fixed-newstyle handshake: greeting, NBD_OPT_STRUCTURED_REPLY,
/// NBD_OPT_SET_META_CONTEXT, then NBD_OPT_GO (falling back to NBD_OPT_EXPORT_NAME for servers
/// that predate GO). Every server message is size-checked before it is buffered.
/// </summary>
internal sealed class NbdHandshake
{
    /// <summary>A server streaming endless INFO replies must not keep us looping.</summary>
    private const int MaxRepliesPerOption = 256;

    private const int ExportNameReplyZeroes = 124;

    private static readonly UTF8Encoding s_strictUtf8 = new(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true);

    private readonly Socket _socket;
    private readonly NbdSocketReader _reader;
    private readonly string _exportName;
    private readonly byte[] _exportNameBytes;
    private readonly NbdClientOptions _options;
    private readonly CancellationToken _cancellationToken;
    private bool _noZeroes;

    private NbdHandshake(Socket socket, NbdSocketReader reader, string exportName, NbdClientOptions options, CancellationToken cancellationToken)
    {
        _socket = socket;
        _reader = reader;
        _exportName = exportName;
        _exportNameBytes = EncodeString(exportName, "export name");
        _options = options;
        _cancellationToken = cancellationToken;
    }

    public static Task<NbdNegotiation> RunAsync(Socket socket, NbdSocketReader reader, string exportName, NbdClientOptions options, CancellationToken cancellationToken)
    {
        return new NbdHandshake(socket, reader, exportName, options, cancellationToken).RunAsync();
    }

    private async Task<NbdNegotiation> RunAsync()
    {
        await ExchangeGreetingAsync();
        var structured = _options.RequestStructuredReplies && await NegotiateStructuredRepliesAsync();
        var contexts = await NegotiateMetaContextsAsync(structured);
        var export = await GoAsync();
        return new NbdNegotiation(export, structured, contexts);
    }

    private async Task ExchangeGreetingAsync()
    {
        await _reader.EnsureAsync(18, _cancellationToken);
        var greeting = _reader.Peek(18);
        var initMagic = BinaryPrimitives.ReadUInt64BigEndian(greeting);
        var secondMagic = BinaryPrimitives.ReadUInt64BigEndian(greeting[8..]);
        var handshakeFlags = BinaryPrimitives.ReadUInt16BigEndian(greeting[16..]);
        if (initMagic != NbdProtocol.InitMagic)
        {
            throw Protocol($"Not an NBD server: bad greeting magic 0x{initMagic:x16}.");
        }

        if (secondMagic == NbdProtocol.OldstyleMagic)
        {
            throw new NbdHandshakeException("The server uses oldstyle negotiation, which this client does not support.");
        }

        if (secondMagic != NbdProtocol.OptionMagic)
        {
            throw Protocol($"Not an NBD newstyle server: bad magic 0x{secondMagic:x16} after NBDMAGIC.");
        }

        _reader.Advance(18);
        if ((handshakeFlags & NbdProtocol.HandshakeFlagFixedNewstyle) == 0)
        {
            throw new NbdHandshakeException("The server does not support fixed newstyle negotiation.");
        }

        // Only echo flags the server offered: servers must drop clients that set anything else.
        _noZeroes = (handshakeFlags & NbdProtocol.HandshakeFlagNoZeroes) != 0;
        var clientFlags = NbdProtocol.ClientFlagFixedNewstyle | (_noZeroes ? NbdProtocol.ClientFlagNoZeroes : 0);
        var buffer = new byte[4];
        BinaryPrimitives.WriteUInt32BigEndian(buffer, clientFlags);
        await _socket.SendAllAsync(buffer, _cancellationToken);
    }

    private async Task<bool> NegotiateStructuredRepliesAsync()
    {
        await SendOptionAsync(NbdOption.StructuredReply, Array.Empty<byte>());
        var reply = await ReadReplyAsync(NbdOption.StructuredReply);
        if (reply.Type == (uint)NbdOptionReply.Ack)
        {
            ExpectEmpty(reply, NbdOption.StructuredReply);
            return true;
        }

        if (reply.IsError)
        {
            var error = (NbdOptionError)reply.Type;
            if (error is NbdOptionError.TlsRequired or NbdOptionError.Shutdown)
            {
                throw OptionError(NbdOption.StructuredReply, reply);
            }

            // Old servers: continue with simple replies.
            return false;
        }

        throw UnexpectedReply(NbdOption.StructuredReply, reply);
    }

    private async Task<IReadOnlyList<NbdMetaContext>> NegotiateMetaContextsAsync(bool structured)
    {
        var queries = _options.MetaContexts;
        if (queries.Count == 0)
        {
            return Array.Empty<NbdMetaContext>();
        }

        if (!structured)
        {
            if (_options.RequireMetaContexts)
            {
                throw new NbdHandshakeException(string.Create(CultureInfo.InvariantCulture,
                    $"Meta contexts ({string.Join(", ", queries)}) need structured replies, which {(_options.RequestStructuredReplies ? "the server does not support" : "were disabled in the options")}."));
            }

            return Array.Empty<NbdMetaContext>();
        }

        var encoded = queries.Select(q => EncodeString(q, "meta context")).ToArray();
        var payload = new byte[4 + _exportNameBytes.Length + 4 + encoded.Sum(q => 4 + q.Length)];
        var span = payload.AsSpan();
        BinaryPrimitives.WriteUInt32BigEndian(span, (uint)_exportNameBytes.Length);
        _exportNameBytes.CopyTo(span[4..]);
        span = span[(4 + _exportNameBytes.Length)..];
        BinaryPrimitives.WriteUInt32BigEndian(span, (uint)encoded.Length);
        span = span[4..];
        foreach (var query in encoded)
        {
            BinaryPrimitives.WriteUInt32BigEndian(span, (uint)query.Length);
            query.CopyTo(span[4..]);
            span = span[(4 + query.Length)..];
        }

        await SendOptionAsync(NbdOption.SetMetaContext, payload);

        var selected = new List<NbdMetaContext>();
        while (true)
        {
            var reply = await ReadReplyAsync(NbdOption.SetMetaContext);
            if (reply.Type == (uint)NbdOptionReply.MetaContext)
            {
                var context = ParseMetaContext(reply.Data);
                if (!IsAnswerToQuery(context.Name, queries))
                {
                    throw Protocol($"Server selected meta context '{context.Name}', which was not requested.");
                }

                if (selected.Any(c => c.Id == context.Id || c.Name == context.Name))
                {
                    throw Protocol($"Server announced meta context '{context.Name}' (id {context.Id}) twice or reused its id.");
                }

                if (selected.Count == NbdProtocol.MaxMetaContexts)
                {
                    throw Protocol($"Server selected more than {NbdProtocol.MaxMetaContexts} meta contexts.");
                }

                selected.Add(context);
                continue;
            }

            if (reply.Type == (uint)NbdOptionReply.Ack)
            {
                ExpectEmpty(reply, NbdOption.SetMetaContext);
                break;
            }

            if (reply.IsError)
            {
                if ((NbdOptionError)reply.Type == NbdOptionError.Unsupported && !_options.RequireMetaContexts)
                {
                    return Array.Empty<NbdMetaContext>();
                }

                throw OptionError(NbdOption.SetMetaContext, reply);
            }

            throw UnexpectedReply(NbdOption.SetMetaContext, reply);
        }

        if (_options.RequireMetaContexts)
        {
            foreach (var query in queries)
            {
                // A query ending in ':' is a namespace wildcard; any number of answers is valid.
                if (!query.EndsWith(':') && !selected.Any(c => c.Name == query))
                {
                    throw new NbdHandshakeException($"The server does not support meta context {query} on export '{_exportName}'.");
                }
            }
        }

        return selected;
    }

    private async Task<NbdExportInfo> GoAsync()
    {
        var payload = new byte[4 + _exportNameBytes.Length + 2 + 2];
        BinaryPrimitives.WriteUInt32BigEndian(payload, (uint)_exportNameBytes.Length);
        _exportNameBytes.CopyTo(payload.AsSpan(4));
        BinaryPrimitives.WriteUInt16BigEndian(payload.AsSpan(4 + _exportNameBytes.Length), 1);
        BinaryPrimitives.WriteUInt16BigEndian(payload.AsSpan(6 + _exportNameBytes.Length), (ushort)NbdInfoType.BlockSize);
        await SendOptionAsync(NbdOption.Go, payload);

        ulong? size = null;
        ushort flags = 0;
        NbdBlockSizeConstraints? blockSize = null;
        string? description = null;
        for (var replies = 0; ; replies++)
        {
            if (replies == MaxRepliesPerOption)
            {
                throw Protocol($"Server sent more than {MaxRepliesPerOption} replies to NBD_OPT_GO.");
            }

            var reply = await ReadReplyAsync(NbdOption.Go);
            if (reply.Type == (uint)NbdOptionReply.Info)
            {
                ParseInfo(reply.Data, ref size, ref flags, ref blockSize, ref description);
                continue;
            }

            if (reply.Type == (uint)NbdOptionReply.Ack)
            {
                ExpectEmpty(reply, NbdOption.Go);
                break;
            }

            if (reply.IsError)
            {
                if ((NbdOptionError)reply.Type == NbdOptionError.Unsupported)
                {
                    return await ExportNameAsync();
                }

                throw OptionError(NbdOption.Go, reply);
            }

            throw UnexpectedReply(NbdOption.Go, reply);
        }

        if (size is null)
        {
            throw Protocol("Server completed NBD_OPT_GO without sending NBD_INFO_EXPORT.");
        }

        return CreateExportInfo(size.Value, flags, blockSize ?? NbdBlockSizeConstraints.Default, description);
    }

    /// <summary>The pre-GO way into transmission: no error reporting, the server just hangs up.</summary>
    private async Task<NbdExportInfo> ExportNameAsync()
    {
        await SendOptionAsync(NbdOption.ExportName, _exportNameBytes);
        var replyLength = 10 + (_noZeroes ? 0 : ExportNameReplyZeroes);
        try
        {
            await _reader.EnsureAsync(replyLength, _cancellationToken);
        }
        catch (IOException ex) when (ex is not NbdProtocolException)
        {
            throw new NbdHandshakeException($"The server closed the connection after NBD_OPT_EXPORT_NAME; export '{_exportName}' was probably not found on server.", ex);
        }

        var data = _reader.Peek(replyLength);
        var size = BinaryPrimitives.ReadUInt64BigEndian(data);
        var flags = BinaryPrimitives.ReadUInt16BigEndian(data[8..]);
        _reader.Advance(replyLength);
        return CreateExportInfo(size, flags, NbdBlockSizeConstraints.Default, null);
    }

    private NbdExportInfo CreateExportInfo(ulong size, ushort flags, NbdBlockSizeConstraints blockSize, string? description)
    {
        if (size > long.MaxValue)
        {
            throw Protocol($"Server reported an absurd export size of {size} bytes (more than 2^63-1).");
        }

        var transmissionFlags = (NbdTransmissionFlags)flags;
        if ((transmissionFlags & NbdTransmissionFlags.HasFlags) == 0)
        {
            throw Protocol($"Server sent transmission flags 0x{flags:x4} without NBD_FLAG_HAS_FLAGS.");
        }

        return new NbdExportInfo(_exportName, (long)size, transmissionFlags, blockSize, description);
    }

    private static void ParseInfo(byte[] data, ref ulong? size, ref ushort flags, ref NbdBlockSizeConstraints? blockSize, ref string? description)
    {
        if (data.Length < 2)
        {
            throw Protocol($"NBD_REP_INFO reply of {data.Length} bytes is too short.");
        }

        var type = (NbdInfoType)BinaryPrimitives.ReadUInt16BigEndian(data);
        var body = data.AsSpan(2);
        switch (type)
        {
            case NbdInfoType.Export:
                if (body.Length != 10)
                {
                    throw Protocol($"NBD_INFO_EXPORT has length {data.Length}, expected 12.");
                }

                size = BinaryPrimitives.ReadUInt64BigEndian(body);
                flags = BinaryPrimitives.ReadUInt16BigEndian(body[8..]);
                break;

            case NbdInfoType.BlockSize:
                if (body.Length != 12)
                {
                    throw Protocol($"NBD_INFO_BLOCK_SIZE has length {data.Length}, expected 14.");
                }

                blockSize = ValidateBlockSize(
                    BinaryPrimitives.ReadUInt32BigEndian(body),
                    BinaryPrimitives.ReadUInt32BigEndian(body[4..]),
                    BinaryPrimitives.ReadUInt32BigEndian(body[8..]));
                break;

            case NbdInfoType.Description:
                description = DecodeString(body, "NBD_INFO_DESCRIPTION");
                break;

            default:
                // NBD_INFO_NAME and future info types: the protocol says to ignore what we did not ask for.
                break;
        }
    }

    private static NbdBlockSizeConstraints ValidateBlockSize(uint minimum, uint preferred, uint maximum)
    {
        if (minimum == 0 || !uint.IsPow2(minimum) || minimum > 64 * 1024)
        {
            throw Protocol($"Server sent an invalid minimum block size {minimum} (must be a power of two up to 64 KiB).");
        }

        if (!uint.IsPow2(preferred) || preferred < minimum)
        {
            throw Protocol($"Server sent an invalid preferred block size {preferred} (minimum is {minimum}).");
        }

        if (maximum < minimum || (maximum != uint.MaxValue && maximum % minimum != 0))
        {
            throw Protocol($"Server sent an invalid maximum block size {maximum} (minimum is {minimum}).");
        }

        return new NbdBlockSizeConstraints(minimum, preferred, maximum);
    }

    private static NbdMetaContext ParseMetaContext(byte[] data)
    {
        if (data.Length < 5)
        {
            throw Protocol($"NBD_REP_META_CONTEXT reply of {data.Length} bytes is too short.");
        }

        var id = BinaryPrimitives.ReadUInt32BigEndian(data);
        var name = DecodeString(data.AsSpan(4), "meta context name");
        return new NbdMetaContext(name, id);
    }

    private static bool IsAnswerToQuery(string name, IList<string> queries)
    {
        foreach (var query in queries)
        {
            if (name == query || (query.EndsWith(':') && name.StartsWith(query, StringComparison.Ordinal)))
            {
                return true;
            }
        }

        return false;
    }

    private async Task SendOptionAsync(NbdOption option, byte[] data)
    {
        var message = new byte[16 + data.Length];
        BinaryPrimitives.WriteUInt64BigEndian(message, NbdProtocol.OptionMagic);
        BinaryPrimitives.WriteUInt32BigEndian(message.AsSpan(8), (uint)option);
        BinaryPrimitives.WriteUInt32BigEndian(message.AsSpan(12), (uint)data.Length);
        data.CopyTo(message.AsSpan(16));
        await _socket.SendAllAsync(message, _cancellationToken);
    }

    private async Task<NbdOptionReplyMessage> ReadReplyAsync(NbdOption option)
    {
        await _reader.EnsureAsync(NbdProtocol.OptionReplyHeaderSize, _cancellationToken);
        var header = _reader.Peek(NbdProtocol.OptionReplyHeaderSize);
        var magic = BinaryPrimitives.ReadUInt64BigEndian(header);
        var repliedOption = BinaryPrimitives.ReadUInt32BigEndian(header[8..]);
        var type = BinaryPrimitives.ReadUInt32BigEndian(header[12..]);
        var length = BinaryPrimitives.ReadUInt32BigEndian(header[16..]);
        if (magic != NbdProtocol.OptionReplyMagic)
        {
            throw Protocol($"Bad option reply magic 0x{magic:x16} in reply to {NbdErrno.OptionName(option)}.");
        }

        if (repliedOption != (uint)option)
        {
            throw Protocol($"Server replied to option {repliedOption} while {NbdErrno.OptionName(option)} was pending.");
        }

        if (length > NbdProtocol.MaxOptionReplyLength)
        {
            throw Protocol($"Option reply of {length} bytes to {NbdErrno.OptionName(option)} exceeds the {NbdProtocol.MaxOptionReplyLength} byte limit.");
        }

        _reader.Advance(NbdProtocol.OptionReplyHeaderSize);
        var data = length == 0 ? Array.Empty<byte>() : new byte[length];
        await _reader.ReadExactAsync(data, _cancellationToken);
        return new NbdOptionReplyMessage(type, data);
    }

    private NbdHandshakeException OptionError(NbdOption option, NbdOptionReplyMessage reply)
    {
        var error = (NbdOptionError)reply.Type;
        var name = NbdErrno.OptionName(option);
        var message = error switch
        {
            NbdOptionError.UnknownExport => $"Export '{_exportName}' not found on server.",
            NbdOptionError.TlsRequired => "The server requires TLS, which this client does not support.",
            NbdOptionError.Unsupported => $"The server does not support {name}.",
            NbdOptionError.Policy => $"The server refused {name} by policy.",
            NbdOptionError.Invalid => $"The server rejected {name} as invalid.",
            NbdOptionError.Platform => $"{name} is not supported on the server's platform.",
            NbdOptionError.Shutdown => "The server is shutting down.",
            NbdOptionError.BlockSizeRequired => "The server requires block size negotiation.",
            NbdOptionError.TooBig => $"The {name} request was too big for the server.",
            NbdOptionError.ExtendedHeadersRequired => "The server requires extended headers, which this client does not support.",
            _ => string.Create(CultureInfo.InvariantCulture, $"The server rejected {name} with error 0x{reply.Type:x8}."),
        };

        string? serverMessage = null;
        if (reply.Data.Length > 0)
        {
            // Lossy decoding: an error message is only for humans, a bad byte must not hide the error.
            serverMessage = Encoding.UTF8.GetString(reply.Data, 0, Math.Min(reply.Data.Length, NbdProtocol.MaxStringLength));
            message += $" Server said: {serverMessage}";
        }

        return new NbdHandshakeException(message, error, serverMessage);
    }

    private static NbdProtocolException UnexpectedReply(NbdOption option, NbdOptionReplyMessage reply) =>
        Protocol($"Unexpected option reply type {reply.Type} to {NbdErrno.OptionName(option)}.");

    private static void ExpectEmpty(NbdOptionReplyMessage reply, NbdOption option)
    {
        if (reply.Data.Length != 0)
        {
            throw Protocol($"NBD_REP_ACK to {NbdErrno.OptionName(option)} carries {reply.Data.Length} unexpected bytes.");
        }
    }

    private static byte[] EncodeString(string value, string what)
    {
        var bytes = Encoding.UTF8.GetBytes(value);
        if (bytes.Length > NbdProtocol.MaxStringLength)
        {
            throw new ArgumentException($"The {what} is {bytes.Length} bytes long; NBD allows at most {NbdProtocol.MaxStringLength}.");
        }

        if (value.Contains('\0', StringComparison.Ordinal))
        {
            throw new ArgumentException($"The {what} must not contain NUL characters.");
        }

        return bytes;
    }

    private static string DecodeString(ReadOnlySpan<byte> data, string what)
    {
        if (data.Length > NbdProtocol.MaxStringLength)
        {
            throw Protocol($"Server sent a {what} of {data.Length} bytes; NBD strings are at most {NbdProtocol.MaxStringLength}.");
        }

        try
        {
            return s_strictUtf8.GetString(data);
        }
        catch (DecoderFallbackException ex)
        {
            throw new NbdProtocolException($"Server sent a {what} that is not valid UTF-8.", ex);
        }
    }

    private static NbdProtocolException Protocol(string message) => new(message);
}
