using System.Buffers.Binary;
using System.Text;

namespace Grpc.Backup.Nbd.Tests.Fuzzing;

/// <summary>
/// Option haggling: listing, other exports' names, INFO, STRUCTURED_REPLY (again and again), meta contexts with junk,
/// unknown and oversized options, then GO, EXPORT_NAME, ABORT or a broken ending.
/// </summary>
internal sealed partial class NbdFuzzer
{
    private const ulong InitMagic = 0x4e42444d41474943;
    private const ulong OptionMagic = 0x49484156454F5054;
    private const uint RepInfo = 3;
    private const uint ErrBit = 0x8000_0000;
    private const ushort InfoExport = 0;
    private const ushort InfoBlockSize = 3;
    private const string Context = NbdMetaContexts.BaseAllocation;

    /// <summary>Transmission flags a guard must never advertise: FLUSH, FUA, WRITE_ZEROES, MULTI_CONN, RESIZE, CACHE, FAST_ZERO.</summary>
    private const ushort FlagSendDf = 1 << 7;

    private const ushort ForbiddenFlags = (1 << 2) | (1 << 3) | (1 << 6) | (1 << 8) | (1 << 9) | (1 << 10) | (1 << 11);

    private static readonly string[] s_otherNames = ["live", "", "SNAP", "snap ", "snap\0", "../snap", "qemu", new string('x', 4096)];

    private static readonly string[] s_queries =
        [Context, "base:", "qemu:dirty-bitmap:b0", "qemu:allocation-depth", "qemu:", "", "base:allocation\0", "x", "base:allocationx"];

    private static readonly uint[] s_unknownOptions = [0, 4, 5, 11, 12, 13, 100, 0x7fff_ffff, 0x8000_0000, 0xffff_ffff];

    private static string Export => CbwSnapshotServer.SnapshotExport;

    private async Task<bool> HandshakeAsync()
    {
        var greeting = await _client.ReceiveExactAsync(18);
        var serverFlags = BinaryPrimitives.ReadUInt16BigEndian(greeting.AsSpan(16));
        if (BinaryPrimitives.ReadUInt64BigEndian(greeting) != InitMagic || BinaryPrimitives.ReadUInt64BigEndian(greeting.AsSpan(8)) != OptionMagic
            || (serverFlags & 1) == 0 || (serverFlags & ~3) != 0)
        {
            throw new FuzzViolation($"greeting {Convert.ToHexString(greeting)}");
        }

        uint[] badFlags = [0, 2, 1 | 4, 3 | (1u << 31), (uint)_random.Next() | 8];
        var clientFlags = _random.Next(10) switch
        {
            < 8 => 3u,
            8 => 1u,
            _ => badFlags[_random.Next(badFlags.Length)],
        };
        await _client.SendAllAsync(RawNbdClient.BigEndian(4, clientFlags), default);
        if ((clientFlags & ~3u) != 0 || (clientFlags & 1) == 0)
        {
            // The protocol: a server MUST close the connection on client flags it does not know.
            await ExpectClosedAsync($"client flags 0x{clientFlags:x}");
            return false;
        }

        _noZeroes = (clientFlags & 2) != 0;
        if (Chance(50))
        {
            // What a real client negotiates first, so block status and structured reads get exercised.
            await StructuredReplyAsync(junk: false);
            await MetaContextAsync(RawNbdClient.OptSetMetaContext, [Context]);
        }

        for (var i = _random.Next(8); i > 0; i--)
        {
            await HaggleAsync();
        }

        return await EndHandshakeAsync();
    }

    private async Task HaggleAsync()
    {
        switch (_random.Next(8))
        {
            case 0:
                var junk = Chance(30) ? RandomBytes(_random.Next(1, 64)) : [];
                ExpectError(await OptionAsync(RawNbdClient.OptList, junk), "LIST", RawNbdClient.ErrPolicy, RawNbdClient.ErrInvalid);
                break;

            case 1:
                var option = Chance(50) ? RawNbdClient.OptGo : RawNbdClient.OptInfo;
                if (Chance(30))
                {
                    ExpectError(await OptionAsync(option, MalformedInfoRequest()), "a malformed GO/INFO", RawNbdClient.ErrInvalid);
                }
                else
                {
                    var name = s_otherNames[_random.Next(s_otherNames.Length)];
                    ExpectError(await OptionAsync(option, InfoRequest(name)), $"GO/INFO of export '{name[..Math.Min(name.Length, 16)]}'", RawNbdClient.ErrUnknown);
                }

                break;

            case 2:
                CheckInfo(await OptionAsync(RawNbdClient.OptInfo, InfoRequest(Export)), _structured, "INFO");
                break;

            case 3:
                await StructuredReplyAsync(junk: Chance(15));
                break;

            case 4:
            case 5:
                await MetaContextAsync(Chance(60) ? RawNbdClient.OptSetMetaContext : RawNbdClient.OptListMetaContext, null);
                break;

            case 6:
                var unknown = s_unknownOptions[_random.Next(s_unknownOptions.Length)];
                ExpectError(await OptionAsync(unknown, RandomBytes(_random.Next(0, 32))), $"option {unknown}", RawNbdClient.ErrUnsupported);
                break;

            default:
                // Oversized payloads: the guard must skip them unbuffered and refuse.
                uint[] options = [RawNbdClient.OptList, RawNbdClient.OptGo, RawNbdClient.OptInfo, RawNbdClient.OptStructuredReply, RawNbdClient.OptSetMetaContext, RawNbdClient.OptListMetaContext, 12];
                var big = options[_random.Next(options.Length)];
                ExpectError(await OptionAsync(big, RandomBytes(_random.Next(65537, 262144))), $"an oversized option {big}",
                    RawNbdClient.ErrTooBig, RawNbdClient.ErrInvalid, RawNbdClient.ErrUnsupported, RawNbdClient.ErrPolicy);
                break;
        }
    }

    private async Task<bool> EndHandshakeAsync()
    {
        var roll = _random.Next(100);
        switch (roll)
        {
            case < 60:
                CheckInfo(await OptionAsync(RawNbdClient.OptGo, InfoRequest(Export)), _structured, "GO");
                return true;

            case < 70:
                await SendOptionAsync(RawNbdClient.OptExportName, Encoding.UTF8.GetBytes(Export));
                var reply = await _client.ReceiveExactAsync(10 + (_noZeroes ? 0 : 124));
                CheckExport(BinaryPrimitives.ReadUInt64BigEndian(reply), BinaryPrimitives.ReadUInt16BigEndian(reply.AsSpan(8)), _structured, "EXPORT_NAME");
                if (reply.AsSpan(10).ContainsAnyExcept((byte)0))
                {
                    throw new FuzzViolation("EXPORT_NAME: the reserved bytes are not zeroes");
                }

                return true;

            case < 75:
                // No error reply exists for EXPORT_NAME: a name the guard does not serve ends the connection.
                await SendOptionAsync(RawNbdClient.OptExportName, Encoding.UTF8.GetBytes(s_otherNames[_random.Next(s_otherNames.Length)]));
                await ExpectClosedAsync("EXPORT_NAME of another export");
                return false;

            case < 80:
                try
                {
                    var abort = await OptionAsync(RawNbdClient.OptAbort, []);
                    if (abort[^1].Type != RawNbdClient.RepAck)
                    {
                        throw new FuzzViolation($"ABORT answered 0x{abort[^1].Type:x}");
                    }
                }
                catch (IOException)
                {
                    // A server may close without acknowledging.
                }

                await ExpectClosedAsync("ABORT");
                return false;

            case < 85:
                var garbage = RandomBytes(16);
                await _client.SendAllAsync(garbage, default);
                if (BinaryPrimitives.ReadUInt64BigEndian(garbage) != OptionMagic)
                {
                    await ExpectClosedAsync("an option with a bad magic");
                }

                return false;

            case < 90:
                // A truncated option header, then gone.
                var header = OptionHeader(RawNbdClient.OptGo, 10);
                await _client.SendAllAsync(header.AsMemory(0, _random.Next(1, header.Length)), default);
                return false;

            case < 95:
                // A huge declared payload, part of it, then gone. The guard may close first (an EXPORT_NAME that long
                // has no error reply), so the payload may meet a closed connection.
                await _client.SendAllAsync(OptionHeader((uint)_random.Next(1, 12), (uint)_random.NextInt64(1 << 20, uint.MaxValue)), default);
                await SendUnlessClosedAsync(RandomBytes(_random.Next(0, 65536)));
                return false;

            default:
                return false;
        }
    }

    private async Task StructuredReplyAsync(bool junk)
    {
        if (junk)
        {
            ExpectError(await OptionAsync(RawNbdClient.OptStructuredReply, RandomBytes(_random.Next(1, 16))), "STRUCTURED_REPLY with data", RawNbdClient.ErrInvalid);
            return;
        }

        var replies = await OptionAsync(RawNbdClient.OptStructuredReply, []);
        var type = replies[^1].Type;
        if (type == RawNbdClient.RepAck)
        {
            _structured = true;
        }
        else if (!_structured || type != RawNbdClient.ErrInvalid)
        {
            // Asked twice, a server may refuse the second time; the first must be acknowledged.
            throw new FuzzViolation($"STRUCTURED_REPLY answered 0x{type:x}");
        }
    }

    /// <summary>LIST or SET_META_CONTEXT with <paramref name="queries"/>, or random (and malformed) ones when null.</summary>
    private async Task MetaContextAsync(uint option, string[]? queries)
    {
        var set = option == RawNbdClient.OptSetMetaContext;
        var what = set ? "SET_META_CONTEXT" : "LIST_META_CONTEXT";
        if (set)
        {
            // The protocol: SET_META_CONTEXT replaces the selection, even when it fails.
            _contexts = [];
        }
        if (queries is null && Chance(25))
        {
            ExpectError(await OptionAsync(option, MalformedMetaContextRequest()), $"a malformed {what}", RawNbdClient.ErrInvalid, RawNbdClient.ErrTooBig);
            return;
        }

        var other = queries is null && Chance(15);
        queries ??= Enumerable.Range(0, _random.Next(0, 4)).Select(_ => s_queries[_random.Next(s_queries.Length)]).ToArray();
        var replies = await OptionAsync(option, RawNbdClient.MetaContextRequest(other ? "live" : Export, queries));
        if (set && !_structured)
        {
            // SET_META_CONTEXT before structured replies is invalid.
            ExpectError(replies, $"{what} before STRUCTURED_REPLY", RawNbdClient.ErrInvalid);
            return;
        }

        if (other)
        {
            ExpectError(replies, $"{what} for another export", RawNbdClient.ErrUnknown);
            return;
        }

        if (replies[^1].Type != RawNbdClient.RepAck)
        {
            throw new FuzzViolation($"{what} [{string.Join(',', queries)}] answered 0x{replies[^1].Type:x}");
        }

        var ids = new List<uint>();
        var names = new List<string>();
        foreach (var (type, data) in replies.SkipLast(1))
        {
            if (type != RawNbdClient.RepMetaContext || data.Length < 5)
            {
                throw new FuzzViolation($"{what}: reply 0x{type:x} of {data.Length} bytes");
            }

            var id = BinaryPrimitives.ReadUInt32BigEndian(data);
            var name = Encoding.UTF8.GetString(data.AsSpan(4));
            var asked = queries.Any(q => q == name || (q.Length > 0 && q[^1] == ':' && name.StartsWith(q, StringComparison.Ordinal)));

            // Only the contexts the guard negotiated upstream exist; the list without queries names them all.
            if (name != Context || (!asked && (set || queries.Length > 0)) || (set && (id == 0 || ids.Contains(id))))
            {
                throw new FuzzViolation($"{what} [{string.Join(',', queries)}]: context '{name}' id {id}");
            }

            ids.Add(id);
            names.Add(name);
        }

        if ((queries.Contains(Context) || (!set && queries.Length == 0)) && !names.Contains(Context))
        {
            throw new FuzzViolation($"{what} [{string.Join(',', queries)}] did not return {Context}");
        }

        if (set)
        {
            _contexts = [.. ids];
        }
    }

    /// <summary>Checks the INFO replies of GO or INFO for the guarded export: its size, flags and block sizes, then ACK.</summary>
    private static void CheckInfo(List<(uint Type, byte[] Data)> replies, bool structured, string what)
    {
        if (replies[^1].Type != RawNbdClient.RepAck)
        {
            throw new FuzzViolation($"{what} of the export answered 0x{replies[^1].Type:x}");
        }

        var export = false;
        foreach (var (type, data) in replies.SkipLast(1))
        {
            if (type != RepInfo || data.Length < 2)
            {
                throw new FuzzViolation($"{what}: reply 0x{type:x} of {data.Length} bytes");
            }

            switch (BinaryPrimitives.ReadUInt16BigEndian(data))
            {
                case InfoExport when data.Length == 12:
                    CheckExport(BinaryPrimitives.ReadUInt64BigEndian(data.AsSpan(2)), BinaryPrimitives.ReadUInt16BigEndian(data.AsSpan(10)), structured, what);
                    export = true;
                    break;

                case InfoBlockSize when data.Length == 14:
                    var minimum = BinaryPrimitives.ReadUInt32BigEndian(data.AsSpan(2));
                    var preferred = BinaryPrimitives.ReadUInt32BigEndian(data.AsSpan(6));
                    var maximum = BinaryPrimitives.ReadUInt32BigEndian(data.AsSpan(10));
                    if (minimum != FuzzEnvironment.Cluster || preferred < minimum || maximum != FuzzEnvironment.MaxRequestSize)
                    {
                        throw new FuzzViolation($"{what}: block sizes {minimum}/{preferred}/{maximum}");
                    }

                    break;

                case InfoExport or InfoBlockSize:
                    throw new FuzzViolation($"{what}: an info reply of {data.Length} bytes");
            }
        }

        if (!export)
        {
            throw new FuzzViolation($"{what}: no NBD_INFO_EXPORT before the ACK");
        }
    }

    /// <summary>
    /// The export as described: its size, HAS_FLAGS and SEND_TRIM set, nothing that would invite a write, and SEND_DF
    /// exactly when structured replies were negotiated (the protocol: the server MUST leave it clear otherwise, and the
    /// guard honours DF on structured reads).
    /// </summary>
    private static void CheckExport(ulong size, ushort flags, bool structured, string what)
    {
        if (size != FuzzEnvironment.DiskSize || (flags & 1) == 0 || (flags & ForbiddenFlags) != 0 || (flags & (1 << 5)) == 0
            || ((flags & FlagSendDf) != 0) != structured)
        {
            throw new FuzzViolation($"{what}: size {size}, transmission flags 0x{flags:x}{(structured ? "" : " without structured replies")}");
        }
    }

    private static void ExpectError(List<(uint Type, byte[] Data)> replies, string what, params uint[] errors)
    {
        if (replies.Count != 1 || !errors.Contains(replies[0].Type))
        {
            throw new FuzzViolation($"{what}: replies {string.Join(',', replies.Select(r => $"0x{r.Type:x}"))}, the protocol names {string.Join(" or ", errors.Select(e => $"0x{e:x}"))}");
        }
    }

    private async Task<List<(uint Type, byte[] Data)>> OptionAsync(uint option, byte[] data)
    {
        _stats.Option();
        var replies = await _client.OptionAsync(option, data);
        if (replies.Count > 1 && replies.SkipLast(1).Any(r => (r.Type & ErrBit) != 0))
        {
            throw new FuzzViolation($"option {option}: an error reply before the final one");
        }

        return replies;
    }

    private Task SendOptionAsync(uint option, byte[] data)
    {
        _stats.Option();
        return _client.SendAllAsync(OptionHeader(option, (uint)data.Length).Concat(data).ToArray(), default);
    }

    private static byte[] OptionHeader(uint option, uint length)
    {
        var header = new byte[16];
        BinaryPrimitives.WriteUInt64BigEndian(header, OptionMagic);
        BinaryPrimitives.WriteUInt32BigEndian(header.AsSpan(8), option);
        BinaryPrimitives.WriteUInt32BigEndian(header.AsSpan(12), length);
        return header;
    }

    /// <summary>GO/INFO for <paramref name="name"/>, asking for random information types (known and unknown).</summary>
    private byte[] InfoRequest(string name)
    {
        var bytes = Encoding.UTF8.GetBytes(name);
        var count = _random.Next(0, 5);
        var data = new byte[4 + bytes.Length + 2 + (2 * count)];
        BinaryPrimitives.WriteUInt32BigEndian(data, (uint)bytes.Length);
        bytes.CopyTo(data, 4);
        BinaryPrimitives.WriteUInt16BigEndian(data.AsSpan(4 + bytes.Length), (ushort)count);
        for (var i = 0; i < count; i++)
        {
            BinaryPrimitives.WriteUInt16BigEndian(data.AsSpan(4 + bytes.Length + 2 + (2 * i)), (ushort)(Chance(70) ? _random.Next(0, 4) : _random.Next(4, 65536)));
        }

        return data;
    }

    private byte[] MalformedInfoRequest()
    {
        var valid = InfoRequest(Export);
        return _random.Next(3) switch
        {
            // Cut short, a name length past the end, or a request count that does not match.
            0 => valid[..(valid.Length - _random.Next(1, valid.Length))],
            1 => [.. RawNbdClient.BigEndian(4, (uint)_random.Next(valid.Length, int.MaxValue)), .. valid.AsSpan(4)],
            _ => [.. valid, .. RandomBytes(1)],
        };
    }

    private byte[] MalformedMetaContextRequest()
    {
        var valid = RawNbdClient.MetaContextRequest(Export, Context, "base:");
        return _random.Next(4) switch
        {
            0 => valid[..(valid.Length - _random.Next(1, valid.Length))],
            1 => [.. valid, .. RandomBytes(_random.Next(1, 8))],
            2 => [.. valid.AsSpan(0, 8), .. RawNbdClient.BigEndian(4, (uint)_random.Next(3, int.MaxValue)), .. valid.AsSpan(12)],
            _ => RandomBytes(_random.Next(0, 48)),
        };
    }
}
