using System.Buffers.Binary;

namespace Grpc.Backup.Nbd.Internal;

/// <summary>
/// The server side of the fixed-newstyle handshake, for exactly one export: GO, INFO and EXPORT_NAME answer only for
/// its name, LIST is refused by policy, STARTTLS and unknown options are unsupported, and the metadata contexts
/// offered are the ones the guard negotiated upstream.
/// </summary>
internal sealed partial class NbdGuardSession
{
    private const int OptionHeaderSize = 16;

    /// <summary>Option payloads are names and context queries; anything larger is refused without buffering it.</summary>
    private const int MaxOptionLength = 64 * 1024;

    /// <summary>A client haggling forever only ever gets refusals; after this many options it is dropped.</summary>
    private const int MaxOptions = 1024;

    private const int ExportNameReplyZeroes = 124;

    /// <summary>Runs the handshake; true when the client entered the transmission phase.</summary>
    private async Task<bool> HandshakeAsync()
    {
        var token = _stop.Token;
        var greeting = new byte[18];
        BinaryPrimitives.WriteUInt64BigEndian(greeting, NbdProtocol.InitMagic);
        BinaryPrimitives.WriteUInt64BigEndian(greeting.AsSpan(8), NbdProtocol.OptionMagic);
        BinaryPrimitives.WriteUInt16BigEndian(greeting.AsSpan(16), NbdProtocol.HandshakeFlagFixedNewstyle | NbdProtocol.HandshakeFlagNoZeroes);
        await _client.SendAllAsync(greeting, token);

        await _in.EnsureAsync(4, token);
        var clientFlags = BinaryPrimitives.ReadUInt32BigEndian(_in.Peek(4));
        _in.Advance(4);
        const uint known = NbdProtocol.ClientFlagFixedNewstyle | NbdProtocol.ClientFlagNoZeroes;
        if ((clientFlags & ~known) != 0 || (clientFlags & NbdProtocol.ClientFlagFixedNewstyle) == 0)
        {
            // The protocol tells a server to drop a client that sets flags it did not offer; only fixed newstyle is spoken.
            return false;
        }

        _noZeroes = (clientFlags & NbdProtocol.ClientFlagNoZeroes) != 0;
        for (var count = 0; count < MaxOptions; count++)
        {
            await _in.EnsureAsync(OptionHeaderSize, token);
            var header = _in.Peek(OptionHeaderSize);
            var magic = BinaryPrimitives.ReadUInt64BigEndian(header);
            var option = (NbdOption)BinaryPrimitives.ReadUInt32BigEndian(header[8..]);
            var length = BinaryPrimitives.ReadUInt32BigEndian(header[12..]);
            _in.Advance(OptionHeaderSize);
            if (magic != NbdProtocol.OptionMagic)
            {
                return false;
            }

            if (option == NbdOption.ExportName)
            {
                // No error reply exists for EXPORT_NAME: an unknown name (or an absurd length) just ends the connection.
                if (length > NbdProtocol.MaxStringLength)
                {
                    return false;
                }

                var name = new byte[length];
                await _in.ReadExactAsync(name, token);
                if (!_export.IsExportName(name))
                {
                    return false;
                }

                var reply = new byte[10 + (_noZeroes ? 0 : ExportNameReplyZeroes)];
                BinaryPrimitives.WriteUInt64BigEndian(reply, (ulong)_export.Size);
                BinaryPrimitives.WriteUInt16BigEndian(reply.AsSpan(8), (ushort)_export.FlagsFor(_structured));
                await _client.SendAllAsync(reply, token);
                return true;
            }

            if (length > MaxOptionLength)
            {
                await _in.SkipAsync(length, token);
                await SendOptionReplyAsync(option, NbdOptionError.TooBig, []);
                continue;
            }

            var data = new byte[length];
            await _in.ReadExactAsync(data, token);
            switch (option)
            {
                case NbdOption.Abort:
                    await SendOptionReplyAsync(option, NbdOptionReply.Ack, []);
                    return false;

                case NbdOption.List:
                    // Which exports the upstream server has is none of the client's business.
                    await SendOptionReplyAsync(option, NbdOptionError.Policy, []);
                    break;

                case NbdOption.StructuredReply:
                    if (length != 0)
                    {
                        await SendOptionReplyAsync(option, NbdOptionError.Invalid, []);
                        break;
                    }

                    _structured = true;
                    await SendOptionReplyAsync(option, NbdOptionReply.Ack, []);
                    break;

                case NbdOption.Info:
                case NbdOption.Go:
                    if (await AnswerInfoAsync(option, data) && option == NbdOption.Go)
                    {
                        return true;
                    }

                    break;

                case NbdOption.ListMetaContext:
                case NbdOption.SetMetaContext:
                    await AnswerMetaContextAsync(option, data);
                    break;

                default:
                    // STARTTLS, extended headers and anything newer or unknown.
                    await SendOptionReplyAsync(option, NbdOptionError.Unsupported, []);
                    break;
            }
        }

        return false;
    }

    /// <summary>NBD_OPT_INFO / NBD_OPT_GO: true when the export was described and acknowledged.</summary>
    private async Task<bool> AnswerInfoAsync(NbdOption option, byte[] data)
    {
        if (!TryReadString(data, 0, out var name, out var next) || data.Length - next < 2)
        {
            await SendOptionReplyAsync(option, NbdOptionError.Invalid, []);
            return false;
        }

        int requests = BinaryPrimitives.ReadUInt16BigEndian(data.AsSpan(next));
        if (data.Length - next - 2 != requests * 2)
        {
            await SendOptionReplyAsync(option, NbdOptionError.Invalid, []);
            return false;
        }

        if (!_export.IsExportName(data.AsSpan(name.Offset, name.Length)))
        {
            await SendOptionReplyAsync(option, NbdOptionError.UnknownExport, []);
            return false;
        }

        var wantsName = false;
        for (var i = 0; i < requests; i++)
        {
            wantsName |= BinaryPrimitives.ReadUInt16BigEndian(data.AsSpan(next + 2 + (2 * i))) == (ushort)NbdInfoType.Name;
        }

        var export = new byte[12];
        BinaryPrimitives.WriteUInt16BigEndian(export, (ushort)NbdInfoType.Export);
        BinaryPrimitives.WriteUInt64BigEndian(export.AsSpan(2), (ulong)_export.Size);
        BinaryPrimitives.WriteUInt16BigEndian(export.AsSpan(10), (ushort)_export.FlagsFor(_structured));
        await SendOptionReplyAsync(option, NbdOptionReply.Info, export);

        // Always sent, asked for or not: the minimum is what keeps well-behaved clients' TRIMs whole clusters.
        var blockSize = new byte[14];
        BinaryPrimitives.WriteUInt16BigEndian(blockSize, (ushort)NbdInfoType.BlockSize);
        BinaryPrimitives.WriteUInt32BigEndian(blockSize.AsSpan(2), _export.Minimum);
        BinaryPrimitives.WriteUInt32BigEndian(blockSize.AsSpan(6), _export.Preferred);
        BinaryPrimitives.WriteUInt32BigEndian(blockSize.AsSpan(10), _export.Maximum);
        await SendOptionReplyAsync(option, NbdOptionReply.Info, blockSize);

        if (wantsName)
        {
            var info = new byte[2 + _export.NameBytes.Length];
            BinaryPrimitives.WriteUInt16BigEndian(info, (ushort)NbdInfoType.Name);
            _export.NameBytes.CopyTo(info, 2);
            await SendOptionReplyAsync(option, NbdOptionReply.Info, info);
        }

        await SendOptionReplyAsync(option, NbdOptionReply.Ack, []);
        return true;
    }

    /// <summary>NBD_OPT_LIST_META_CONTEXT / NBD_OPT_SET_META_CONTEXT over the contexts negotiated upstream.</summary>
    private async Task AnswerMetaContextAsync(NbdOption option, byte[] data)
    {
        var set = option == NbdOption.SetMetaContext;
        if (set)
        {
            // The protocol: SET_META_CONTEXT replaces the selection even when it fails, so a failed one leaves none.
            _selected = [];
        }

        if (set && !_structured)
        {
            // The protocol: SET_META_CONTEXT before structured replies is invalid.
            await SendOptionReplyAsync(option, NbdOptionError.Invalid, []);
            return;
        }

        if (!TryReadString(data, 0, out var name, out var next) || data.Length - next < 4)
        {
            await SendOptionReplyAsync(option, NbdOptionError.Invalid, []);
            return;
        }

        var count = BinaryPrimitives.ReadUInt32BigEndian(data.AsSpan(next));
        next += 4;
        var queries = new List<(int Offset, int Length)>();
        for (var i = 0u; i < count; i++)
        {
            if (!TryReadString(data, next, out var query, out next))
            {
                await SendOptionReplyAsync(option, NbdOptionError.Invalid, []);
                return;
            }

            queries.Add(query);
        }

        if (next != data.Length)
        {
            await SendOptionReplyAsync(option, NbdOptionError.Invalid, []);
            return;
        }

        if (!_export.IsExportName(data.AsSpan(name.Offset, name.Length)))
        {
            await SendOptionReplyAsync(option, NbdOptionError.UnknownExport, []);
            return;
        }

        var chosen = new List<int>();
        for (var c = 0; c < _export.Contexts.Count; c++)
        {
            var contextName = System.Text.Encoding.UTF8.GetBytes(_export.Contexts[c]);
            var match = queries.Count == 0 && !set;
            foreach (var (offset, length) in queries)
            {
                var query = data.AsSpan(offset, length);

                // Exact names, or a namespace query ("qemu:") that lists every context in it.
                match |= query.SequenceEqual(contextName) || (query.Length > 0 && query[^1] == (byte)':' && contextName.AsSpan().StartsWith(query));
            }

            if (!match)
            {
                continue;
            }

            chosen.Add(c + 1);
            var reply = new byte[4 + contextName.Length];
            BinaryPrimitives.WriteUInt32BigEndian(reply, set ? (uint)(c + 1) : 0);
            contextName.CopyTo(reply, 4);
            await SendOptionReplyAsync(option, NbdOptionReply.MetaContext, reply);
        }

        if (set)
        {
            _selected = [.. chosen];
        }

        await SendOptionReplyAsync(option, NbdOptionReply.Ack, []);
    }

    /// <summary>A 32-bit length-prefixed string inside an option payload, bounded by the payload and the protocol's 4 KiB.</summary>
    private static bool TryReadString(byte[] data, int offset, out (int Offset, int Length) value, out int next)
    {
        value = default;
        next = offset;
        if (data.Length - offset < 4)
        {
            return false;
        }

        var length = BinaryPrimitives.ReadUInt32BigEndian(data.AsSpan(offset));
        if (length > NbdProtocol.MaxStringLength || length > (uint)(data.Length - offset - 4))
        {
            return false;
        }

        value = (offset + 4, (int)length);
        next = offset + 4 + (int)length;
        return true;
    }

    private Task SendOptionReplyAsync(NbdOption option, NbdOptionError error, byte[] data) =>
        SendOptionReplyAsync(option, (uint)error, data);

    private Task SendOptionReplyAsync(NbdOption option, NbdOptionReply type, byte[] data) =>
        SendOptionReplyAsync(option, (uint)type, data);

    private async Task SendOptionReplyAsync(NbdOption option, uint type, byte[] data)
    {
        var message = new byte[NbdProtocol.OptionReplyHeaderSize + data.Length];
        BinaryPrimitives.WriteUInt64BigEndian(message, NbdProtocol.OptionReplyMagic);
        BinaryPrimitives.WriteUInt32BigEndian(message.AsSpan(8), (uint)option);
        BinaryPrimitives.WriteUInt32BigEndian(message.AsSpan(12), type);
        BinaryPrimitives.WriteUInt32BigEndian(message.AsSpan(16), (uint)data.Length);
        data.CopyTo(message, NbdProtocol.OptionReplyHeaderSize);
        await _client.SendAllAsync(message, _stop.Token);
    }
}
