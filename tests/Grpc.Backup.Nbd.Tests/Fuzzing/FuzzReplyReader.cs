using System.Buffers.Binary;
using System.Net.Sockets;

namespace Grpc.Backup.Nbd.Tests.Fuzzing;

/// <summary>
/// Reads the guard's transmission replies, simple or structured, matches them to the requests sent and judges each
/// against the protocol: the cookie of a request in flight, a structured reply only when negotiated (and always for a
/// READ then), known chunk types and flags, data and holes inside the request and equal to the snapshot's bytes, block
/// status for exactly the selected contexts in contiguous whole blocks, and an error the protocol names.
/// </summary>
internal sealed class FuzzReplyReader
{
    // Wire values written from the protocol here, not taken from the guard's own NbdProtocol: an oracle that shared
    // the implementation's constants would share its mistakes.
    private const uint SimpleMagic = 0x67446698;
    private const uint StructuredMagic = 0x668e33ef;
    private const ushort FlagDone = 1;
    private const ushort TypeNone = 0;
    private const ushort TypeOffsetData = 1;
    private const ushort TypeOffsetHole = 2;
    private const ushort TypeBlockStatus = 5;
    private const ushort TypeError = 32769;
    private const ushort TypeErrorOffset = 32770;
    private const uint StateHole = 1;
    private const uint StateZero = 2;

    private readonly RawNbdClient _client;
    private readonly SnapshotModel _model;
    private readonly bool _structured;
    private readonly uint[] _contexts;
    private readonly FuzzStats _stats;
    private readonly Dictionary<ulong, FuzzRequest> _pending = [];
    private readonly Lock _gate = new();

    public FuzzReplyReader(RawNbdClient client, SnapshotModel model, bool structured, uint[] contexts, FuzzStats stats)
    {
        _stats = stats;
        _client = client;
        _model = model;
        _structured = structured;
        _contexts = contexts;
    }

    /// <summary>Registers a request before it is sent.</summary>
    public void Add(FuzzRequest request)
    {
        lock (_gate)
        {
            _pending.Add(request.Cookie, request);
        }
    }

    /// <summary>
    /// Reads until <paramref name="count"/> requests are answered. When the guard may close the connection (the fuzzer
    /// broke the protocol), the end of the stream ends reading too, and the number answered is returned.
    /// </summary>
    public async Task<int> CollectAsync(int count, bool closeAllowed)
    {
        var answered = 0;
        while (answered < count)
        {
            byte[] magic;
            try
            {
                magic = await _client.ReceiveExactAsync(4);
            }
            catch (Exception ex) when (ex is IOException or SocketException)
            {
                if (closeAllowed)
                {
                    return answered;
                }

                throw new FuzzViolation($"the guard closed the connection with {count - answered} replies outstanding", ex);
            }

            try
            {
                answered += BinaryPrimitives.ReadUInt32BigEndian(magic) switch
                {
                    SimpleMagic => await ReadSimpleAsync(),
                    StructuredMagic => await ReadChunkAsync(),
                    var other => throw new FuzzViolation($"a reply with magic 0x{other:x8}"),
                };
            }
            catch (Exception ex) when (closeAllowed && ex is IOException or SocketException)
            {
                // Cut off inside a reply: the guard dropped the connection.
                return answered;
            }
        }

        return answered;
    }

    private async Task<int> ReadSimpleAsync()
    {
        var header = await _client.ReceiveExactAsync(12);
        var error = BinaryPrimitives.ReadUInt32BigEndian(header);
        var request = Take(BinaryPrimitives.ReadUInt64BigEndian(header.AsSpan(4)), remove: true);
        if (_structured && request.Command == RawNbdClient.CmdRead)
        {
            throw new FuzzViolation($"{request}: a simple reply to a READ after structured replies were negotiated");
        }

        if (error == 0 && request.Command == RawNbdClient.CmdRead && request.MaySucceed)
        {
            var data = await _client.ReceiveExactAsync((int)request.Length);
            _model.Check((long)request.Offset, data, request.ToString());
            request.Delivered = request.Length;
        }

        Finish(request, (int)error);
        return 1;
    }

    private async Task<int> ReadChunkAsync()
    {
        var header = await _client.ReceiveExactAsync(16);
        var flags = BinaryPrimitives.ReadUInt16BigEndian(header);
        var type = BinaryPrimitives.ReadUInt16BigEndian(header.AsSpan(2));
        var request = Take(BinaryPrimitives.ReadUInt64BigEndian(header.AsSpan(4)), remove: false);
        var length = BinaryPrimitives.ReadUInt32BigEndian(header.AsSpan(12));
        if (!_structured)
        {
            throw new FuzzViolation($"{request}: a structured reply chunk, but structured replies were never negotiated");
        }

        if ((flags & ~FlagDone) != 0)
        {
            throw new FuzzViolation($"{request}: reply chunk flags 0x{flags:x}");
        }

        if (length > request.Length + 65536L)
        {
            throw new FuzzViolation($"{request}: a {length}-byte reply chunk");
        }

        var payload = await _client.ReceiveExactAsync((int)length);
        switch (type)
        {
            case TypeNone when length != 0 || (flags & FlagDone) == 0:
                throw new FuzzViolation($"{request}: NONE chunk with {length} bytes, flags 0x{flags:x}");

            case TypeNone:
                break;

            case TypeOffsetData when request.Command == RawNbdClient.CmdRead && length > 8:
                Deliver(request, payload, BinaryPrimitives.ReadUInt64BigEndian(payload), payload.AsSpan(8));
                break;

            case TypeOffsetHole when request.Command == RawNbdClient.CmdRead && length == 12:
                Deliver(request, payload, BinaryPrimitives.ReadUInt64BigEndian(payload), new byte[BinaryPrimitives.ReadUInt32BigEndian(payload.AsSpan(8))]);
                break;

            case TypeBlockStatus when request.Command == RawNbdClient.CmdBlockStatus:
                CheckBlockStatus(request, payload);
                break;

            case TypeError or TypeErrorOffset:
                var message = payload.Length >= 6 ? BinaryPrimitives.ReadUInt16BigEndian(payload.AsSpan(4)) : -1;
                if (payload.Length != 6 + message + (type == TypeErrorOffset ? 8 : 0))
                {
                    throw new FuzzViolation($"{request}: a malformed error chunk of {payload.Length} bytes");
                }

                request.Error = (int)BinaryPrimitives.ReadUInt32BigEndian(payload);
                if (request.Error == 0)
                {
                    throw new FuzzViolation($"{request}: an error chunk with error 0");
                }

                break;

            default:
                throw new FuzzViolation($"{request}: a chunk of type {type} ({length} bytes)");
        }

        if ((flags & FlagDone) == 0)
        {
            return 0;
        }

        Take(request.Cookie, remove: true);
        Finish(request, request.Error);
        return 1;
    }

    private void Deliver(FuzzRequest request, byte[] payload, ulong offset, ReadOnlySpan<byte> data)
    {
        if (data.IsEmpty || offset < request.Offset || offset + (ulong)data.Length > request.Offset + request.Length)
        {
            throw new FuzzViolation($"{request}: {data.Length} bytes at {offset} outside the request ({payload.Length}-byte chunk)");
        }

        _model.Check((long)offset, data, request.ToString());
        request.Delivered += data.Length;
    }

    private void CheckBlockStatus(FuzzRequest request, byte[] payload)
    {
        if (payload.Length < 12 || (payload.Length - 4) % 8 != 0)
        {
            throw new FuzzViolation($"{request}: a block status chunk of {payload.Length} bytes");
        }

        var id = BinaryPrimitives.ReadUInt32BigEndian(payload);
        if (!_contexts.Contains(id) || !request.Contexts.Add(id))
        {
            throw new FuzzViolation($"{request}: block status for context id {id} (selected: {string.Join(',', _contexts)}), or twice");
        }

        var count = (payload.Length - 4) / 8;
        if ((request.Flags & FuzzRules.FlagReqOne) != 0 && count != 1)
        {
            throw new FuzzViolation($"{request}: {count} extents despite REQ_ONE");
        }

        var position = (long)request.Offset;
        for (var i = 0; i < count; i++)
        {
            var length = BinaryPrimitives.ReadUInt32BigEndian(payload.AsSpan(4 + (8 * i)));
            var flags = BinaryPrimitives.ReadUInt32BigEndian(payload.AsSpan(8 + (8 * i)));
            var end = position + length;
            var last = i == count - 1;
            if (length == 0 || end > FuzzEnvironment.DiskSize || (!last && end % FuzzEnvironment.Cluster != 0)
                || ((request.Flags & FuzzRules.FlagReqOne) != 0 && length > request.Length) || (flags & ~(StateHole | StateZero)) != 0)
            {
                throw new FuzzViolation($"{request}: extent {i} of {count} spans {position}..{end} with flags 0x{flags:x}");
            }

            // base:allocation's ZERO promises that the snapshot reads as zeroes there.
            if ((flags & StateZero) != 0)
            {
                _model.Check(position, new byte[length], $"{request}: extent {i} flagged ZERO");
            }

            position = end;
        }
    }

    private FuzzRequest Take(ulong cookie, bool remove)
    {
        lock (_gate)
        {
            if (!_pending.TryGetValue(cookie, out var request))
            {
                throw new FuzzViolation($"a reply for cookie {cookie:x}, which is not in flight");
            }

            if (remove)
            {
                _pending.Remove(cookie);
            }

            return request;
        }
    }

    private void Finish(FuzzRequest request, int error)
    {
        _stats.Answered(request, error);
        if (error != 0)
        {
            // A read or block status of a trimmed cluster is refused by QEMU's snapshot-access node.
            var trimmed = request.MaySucceed && request.Command is RawNbdClient.CmdRead or RawNbdClient.CmdBlockStatus
                && _model.TouchesTrimmed((long)request.Offset, request.Length);
            if (!request.Errors.Contains(error) && !(trimmed && error is FuzzRequest.EINVAL or FuzzRequest.EIO or FuzzRequest.EPERM))
            {
                throw new FuzzViolation($"{request}: error {error}, the protocol names {(request.MaySucceed ? "success" : "")}{string.Join(" or ", request.Errors)}");
            }

            return;
        }

        if (!request.MaySucceed)
        {
            throw new FuzzViolation($"{request}: succeeded, must fail with {string.Join(" or ", request.Errors)}");
        }

        if (_structured && request.Command == RawNbdClient.CmdRead && request.Delivered != request.Length)
        {
            throw new FuzzViolation($"{request}: {request.Delivered} bytes delivered");
        }

        if (request.Command == RawNbdClient.CmdBlockStatus && request.Contexts.Count != _contexts.Length)
        {
            throw new FuzzViolation($"{request}: block status for {request.Contexts.Count} of {_contexts.Length} contexts");
        }
    }
}
