using System.Buffers.Binary;

namespace Grpc.Backup.Nbd.Tests.Fuzzing;

/// <summary>
/// The transmission phase: batches of pipelined random requests (known and unknown commands, misaligned, oversized
/// and overflowing offsets and lengths, random flags), each batch's replies judged, then an ending: DISC, an abrupt
/// close, a truncated header, garbage magic, a flood of reads never collected, or a write whose payload never comes.
/// </summary>
internal sealed partial class NbdFuzzer
{
    private const int RequestSize = 28;
    private const uint RequestMagic = 0x25609513;
    private const int MaxWritePayload = 1024 * 1024;

    private static readonly uint[] s_badMagics = [0, 0x21e41c71 /* extended headers, never negotiated */, 0x67446698, 0x25609514, 0xffffffff];

    private async Task TransmitAsync()
    {
        var replies = new FuzzReplyReader(_client, Model, _structured, _contexts, _stats);
        for (var batch = _random.Next(0, 5); batch > 0; batch--)
        {
            var requests = Enumerable.Range(0, _random.Next(1, 9)).Select(_ => NextRequest()).ToList();
            var collect = replies.CollectAsync(requests.Count, closeAllowed: false);
            await Task.WhenAll(SendAllAsync(replies, requests), collect);
        }

        var roll = _random.Next(100);
        switch (roll)
        {
            case < 35:
            {
                // DISC: what is in flight is answered, then the guard closes.
                var requests = Enumerable.Range(0, _random.Next(0, 5)).Select(_ => NextRequest()).ToList();
                var collect = replies.CollectAsync(requests.Count, closeAllowed: false);
                await SendAllAsync(replies, requests);
                await _client.SendAllAsync(Header(RawNbdClient.CmdDisconnect, (ushort)(Chance(80) ? 0 : _random.Next(65536)), NewCookie(), NextOffset(), NextLength(0)), default);
                await collect;
                await ExpectClosedAsync("DISC");
                break;
            }

            case < 50:
                // Gone with requests in flight.
                await SendAllAsync(replies, Enumerable.Range(0, _random.Next(0, 5)).Select(_ => NextRequest()).ToList());
                break;

            case < 60:
                // Gone in the middle of a request header.
                var header = Header(RawNbdClient.CmdRead, 0, NewCookie(), 0, FuzzEnvironment.Cluster);
                await _client.SendAllAsync(header.AsMemory(0, _random.Next(1, RequestSize)), default);
                break;

            case < 70:
            {
                // Out of sync: what came before may be answered, then the guard must close.
                var requests = Enumerable.Range(0, _random.Next(0, 5)).Select(_ => NextRequest()).ToList();
                var collect = replies.CollectAsync(requests.Count, closeAllowed: true);
                await SendAllAsync(replies, requests);
                var garbage = RandomBytes(RequestSize);
                BinaryPrimitives.WriteUInt32BigEndian(garbage, s_badMagics[_random.Next(s_badMagics.Length)]);
                await _client.SendAllAsync(garbage, default);
                if (await collect == requests.Count)
                {
                    await ExpectClosedAsync("a request with a bad magic");
                }

                break;
            }

            case < 90:
                await FloodAsync(disconnect: Chance(25));
                break;

            default:
                // A write whose payload never comes in full.
                await _client.SendAllAsync(Header(RawNbdClient.CmdWrite, 0, NewCookie(), NextOffset(), (uint)_random.NextInt64(MaxWritePayload, uint.MaxValue)), default);
                await _client.SendAllAsync(RandomBytes(_random.Next(0, 65536)), default);
                break;
        }
    }

    /// <summary>
    /// Pipelined reads of up to the maximum size, never collected (then, perhaps, DISC), then gone. The environment's
    /// sampler judges the guard's bytes in flight meanwhile.
    /// </summary>
    private async Task FloodAsync(bool disconnect)
    {
        var count = _random.Next(8, 65);
        var total = 0L;
        var refusable = false;
        for (var i = 0; i < count; i++)
        {
            var length = Chance(70) ? FuzzEnvironment.MaxRequestSize : FuzzEnvironment.Cluster * _random.Next(1, 64);
            var offset = FuzzEnvironment.Cluster * _random.Next(0, (FuzzEnvironment.DiskSize - length) / FuzzEnvironment.Cluster + 1);
            total += length;
            refusable |= Model.TouchesTrimmed(offset, length);
            await _client.SendAllAsync(Header(RawNbdClient.CmdRead, 0, NewCookie(), (ulong)offset, (uint)length), default);
        }

        if (disconnect)
        {
            await _client.SendAllAsync(Header(RawNbdClient.CmdDisconnect, 0, NewCookie(), 0, 0), default);
        }

        // Reads that succeed hold their budget until their reply is written, and this client reads nothing: a flood of
        // more than the cap must fill the guard up to the cap (less the replies the socket buffers took), where it
        // stops reading. Wait for that, so the cap is judged at its fullest.
        if (total >= FuzzEnvironment.MaxBytesInFlight && !refusable)
        {
            var clock = System.Diagnostics.Stopwatch.StartNew();
            while (_environment.Guard.BytesInFlight < FuzzEnvironment.MaxBytesInFlight / 4)
            {
                if (clock.Elapsed > s_caseBound)
                {
                    throw new FuzzViolation($"a flood of {total} bytes in {count} reads: the guard holds only {_environment.Guard.BytesInFlight} bytes");
                }

                await Task.Delay(10);
            }
        }

    }

    private async Task SendAllAsync(FuzzReplyReader replies, List<FuzzRequest> requests)
    {
        foreach (var request in requests)
        {
            _stats.Request();
            replies.Add(request);
            if (request.Command == RawNbdClient.CmdTrim && request.MaySucceed)
            {
                // Before it is sent: from now on a read of its whole clusters may fail.
                Model.Trim((long)request.Offset, request.Length);
            }

            var header = Header(request.Command, request.Flags, request.Cookie, request.Offset, request.Length);
            await _client.SendAllAsync(request.Command == RawNbdClient.CmdWrite ? [.. header, .. RandomBytes((int)request.Length)] : header, default);
        }
    }

    private FuzzRequest NextRequest()
    {
        if (Chance(40))
        {
            return WellFormedRequest();
        }

        var roll = _random.Next(100);
        var command = roll switch
        {
            < 30 => RawNbdClient.CmdRead,
            < 44 => RawNbdClient.CmdBlockStatus,
            < 56 => RawNbdClient.CmdTrim,
            < 64 => RawNbdClient.CmdWrite,
            < 69 => RawNbdClient.CmdWriteZeroes,
            < 74 => RawNbdClient.CmdFlush,
            < 79 => RawNbdClient.CmdCache,
            < 83 => FuzzRules.CmdResize,
            _ => (ushort)_random.Next(9, 65536),
        };
        var flags = _random.Next(10) switch
        {
            < 5 => (ushort)0,
            < 8 => command switch
            {
                RawNbdClient.CmdRead => FuzzRules.FlagDf,
                RawNbdClient.CmdBlockStatus => FuzzRules.FlagReqOne,
                _ => FuzzRules.FlagFua,
            },
            8 => (ushort)(1 << _random.Next(16)),
            _ => (ushort)_random.Next(65536),
        };
        var offset = NextOffset();
        var length = NextLength(offset);
        if (command == RawNbdClient.CmdWrite && length > MaxWritePayload)
        {
            // Its payload goes on the wire; a huge one is the ending of its own.
            length = (uint)_random.Next(0, MaxWritePayload + 1);
        }

        if (command == RawNbdClient.CmdTrim && length > 2 * FuzzEnvironment.Cluster && Chance(75))
        {
            // Most trims small, so an epoch's snapshot is not gone after a few cases.
            length = (uint)_random.Next(1, 2 * FuzzEnvironment.Cluster);
        }

        return FuzzRules.Expect(command, flags, NewCookie(), offset, length, _structured, _contexts.Length > 0);
    }

    /// <summary>A READ, BLOCK_STATUS or TRIM as a careful client sends it: aligned, in range, no stray flags.</summary>
    private FuzzRequest WellFormedRequest()
    {
        const int clusters = FuzzEnvironment.DiskSize / FuzzEnvironment.Cluster;
        var start = _random.Next(0, clusters);
        var command = _random.Next(10) switch
        {
            < 6 => RawNbdClient.CmdRead,
            < 9 => RawNbdClient.CmdBlockStatus,
            _ => RawNbdClient.CmdTrim,
        };
        // Mostly short, so that reads still land between the clusters earlier cases trimmed.
        var maxClusters = command == RawNbdClient.CmdTrim ? 2 : Chance(70) ? 4 : FuzzEnvironment.MaxRequestSize / FuzzEnvironment.Cluster;
        var count = _random.Next(1, Math.Min(maxClusters, clusters - start) + 1);
        var length = (uint)(count * FuzzEnvironment.Cluster);
        if (command != RawNbdClient.CmdTrim && Chance(15))
        {
            // From the last whole cluster to the end, through the partial one.
            start = clusters - 1;
            length = (uint)(FuzzEnvironment.DiskSize - ((long)start * FuzzEnvironment.Cluster));
        }

        ushort flags = command switch
        {
            RawNbdClient.CmdRead when _structured && Chance(30) => FuzzRules.FlagDf,
            RawNbdClient.CmdBlockStatus when Chance(30) => FuzzRules.FlagReqOne,
            _ => 0,
        };
        return FuzzRules.Expect(command, flags, NewCookie(), (ulong)start * FuzzEnvironment.Cluster, length, _structured, _contexts.Length > 0);
    }

    private ulong NextOffset()
    {
        const ulong size = FuzzEnvironment.DiskSize;
        return _random.Next(100) switch
        {
            < 30 => (ulong)FuzzEnvironment.Cluster * (ulong)_random.Next(0, FuzzEnvironment.DiskSize / FuzzEnvironment.Cluster),
            < 50 => (ulong)_random.Next(0, FuzzEnvironment.DiskSize),
            < 60 => size - (ulong)_random.Next(1, 2 * FuzzEnvironment.Cluster),
            < 66 => size,
            < 71 => size + (ulong)_random.Next(1, 1 << 20),
            < 76 => ulong.MaxValue - (ulong)_random.Next(0, 1 << 20),
            < 80 => 1UL << 63,
            < 90 => 0,
            _ => (ulong)_random.NextInt64() << 1,
        };
    }

    private uint NextLength(ulong offset)
    {
        return _random.Next(100) switch
        {
            < 25 => (uint)(FuzzEnvironment.Cluster * _random.Next(1, 17)),
            < 45 => (uint)_random.Next(1, 1 << 20),
            < 52 => 0,
            < 57 => 1,
            < 62 => 512,
            < 67 => (uint)(FuzzEnvironment.Cluster + _random.Next(-1, 2)),
            < 72 => FuzzEnvironment.MaxRequestSize,
            < 76 => (uint)(FuzzEnvironment.MaxRequestSize + _random.Next(1, FuzzEnvironment.Cluster)),
            < 80 => FuzzEnvironment.DiskSize,
            < 84 => uint.MaxValue,
            < 90 => (uint)_random.NextInt64(0, 1L << 32),

            // Exactly to the end (or past it by one), where reads at the end live.
            _ when offset < FuzzEnvironment.DiskSize => (uint)(FuzzEnvironment.DiskSize - (long)offset + _random.Next(0, 2)),
            _ => (uint)_random.Next(1, 1 << 16),
        };
    }

    private static byte[] Header(ushort command, ushort flags, ulong cookie, ulong offset, uint length)
    {
        var header = new byte[RequestSize];
        BinaryPrimitives.WriteUInt32BigEndian(header, RequestMagic);
        BinaryPrimitives.WriteUInt16BigEndian(header.AsSpan(4), flags);
        BinaryPrimitives.WriteUInt16BigEndian(header.AsSpan(6), command);
        BinaryPrimitives.WriteUInt64BigEndian(header.AsSpan(8), cookie);
        BinaryPrimitives.WriteUInt64BigEndian(header.AsSpan(16), offset);
        BinaryPrimitives.WriteUInt32BigEndian(header.AsSpan(24), length);
        return header;
    }
}
