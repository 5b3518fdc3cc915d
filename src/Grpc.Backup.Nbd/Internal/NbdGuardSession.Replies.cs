using System.Buffers;
using System.Buffers.Binary;

namespace Grpc.Backup.Nbd.Internal;

/// <summary>
/// Replies to the client, structured when it negotiated them and simple otherwise (a read then arrives whole, holes as
/// zeroes, which is what the upstream client already assembled). One reply is written at a time, whole.
/// </summary>
internal sealed partial class NbdGuardSession
{
    /// <summary>Room for any reply header: a read's header goes out just before its payload, under the same lock.</summary>
    private const int ReplyPrefix = 32;

    private const int ReadChunkHeaderSize = NbdProtocol.StructuredReplySize + 8;

    private async Task SendReadReplyAsync(byte[] data, ulong cookie, long offset, int length)
    {
        var header = ArrayPool<byte>.Shared.Rent(ReplyPrefix);
        try
        {
            int size;
            if (_structured)
            {
                WriteChunkHeader(header, NbdProtocol.ReplyFlagDone, NbdReplyType.OffsetData, cookie, (uint)(8 + length));
                BinaryPrimitives.WriteUInt64BigEndian(header.AsSpan(NbdProtocol.StructuredReplySize), (ulong)offset);
                size = ReadChunkHeaderSize;
            }
            else
            {
                WriteSimpleReply(header, 0, cookie);
                size = NbdProtocol.SimpleReplySize;
            }

            await SendAsync(header.AsMemory(0, size), data.AsMemory(0, length));
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(header);
        }
    }

    private async Task SendErrorAsync(ulong cookie, int errno)
    {
        var buffer = ArrayPool<byte>.Shared.Rent(ReplyPrefix);
        try
        {
            int size;
            if (_structured)
            {
                WriteChunkHeader(buffer, NbdProtocol.ReplyFlagDone, NbdReplyType.Error, cookie, 6);
                BinaryPrimitives.WriteUInt32BigEndian(buffer.AsSpan(NbdProtocol.StructuredReplySize), (uint)errno);
                BinaryPrimitives.WriteUInt16BigEndian(buffer.AsSpan(NbdProtocol.StructuredReplySize + 4), 0);
                size = NbdProtocol.StructuredReplySize + 6;
            }
            else
            {
                WriteSimpleReply(buffer, (uint)errno, cookie);
                size = NbdProtocol.SimpleReplySize;
            }

            await SendAsync(buffer.AsMemory(0, size));
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    /// <summary>Success without data (TRIM).</summary>
    private async Task SendDoneAsync(ulong cookie)
    {
        var buffer = ArrayPool<byte>.Shared.Rent(ReplyPrefix);
        try
        {
            int size;
            if (_structured)
            {
                WriteChunkHeader(buffer, NbdProtocol.ReplyFlagDone, NbdReplyType.None, cookie, 0);
                size = NbdProtocol.StructuredReplySize;
            }
            else
            {
                WriteSimpleReply(buffer, 0, cookie);
                size = NbdProtocol.SimpleReplySize;
            }

            await SendAsync(buffer.AsMemory(0, size));
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    /// <summary>One BLOCK_STATUS chunk per selected context, under the client's ids, the last one flagged done.</summary>
    private async Task SendBlockStatusAsync(ulong cookie, List<(int Id, List<NbdExtent> Extents)> chunks)
    {
        var size = 0;
        foreach (var (_, extents) in chunks)
        {
            size += NbdProtocol.StructuredReplySize + 4 + (8 * extents.Count);
        }

        var buffer = ArrayPool<byte>.Shared.Rent(size);
        try
        {
            var position = 0;
            for (var i = 0; i < chunks.Count; i++)
            {
                var (id, extents) = chunks[i];
                var flags = i == chunks.Count - 1 ? NbdProtocol.ReplyFlagDone : (ushort)0;
                WriteChunkHeader(buffer.AsSpan(position), flags, NbdReplyType.BlockStatus, cookie, (uint)(4 + (8 * extents.Count)));
                position += NbdProtocol.StructuredReplySize;
                BinaryPrimitives.WriteUInt32BigEndian(buffer.AsSpan(position), (uint)id);
                position += 4;
                foreach (var extent in extents)
                {
                    BinaryPrimitives.WriteUInt32BigEndian(buffer.AsSpan(position), (uint)extent.Length);
                    BinaryPrimitives.WriteUInt32BigEndian(buffer.AsSpan(position + 4), extent.Flags);
                    position += 8;
                }
            }

            await SendAsync(buffer.AsMemory(0, position));
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    private Task SendAsync(ReadOnlyMemory<byte> reply) => SendAsync(reply, ReadOnlyMemory<byte>.Empty);

    /// <summary>Writes one reply whole: its header and then its payload, with no other reply between them.</summary>
    private async Task SendAsync(ReadOnlyMemory<byte> reply, ReadOnlyMemory<byte> payload)
    {
        await _sendLock.WaitAsync(_stop.Token);
        try
        {
            await _client.SendAllAsync(reply, _stop.Token);
            if (!payload.IsEmpty)
            {
                await _client.SendAllAsync(payload, _stop.Token);
            }
        }
        finally
        {
            _sendLock.Release();
        }
    }

    private static void WriteChunkHeader(Span<byte> destination, ushort flags, NbdReplyType type, ulong cookie, uint length)
    {
        BinaryPrimitives.WriteUInt32BigEndian(destination, NbdProtocol.StructuredReplyMagic);
        BinaryPrimitives.WriteUInt16BigEndian(destination[4..], flags);
        BinaryPrimitives.WriteUInt16BigEndian(destination[6..], (ushort)type);
        BinaryPrimitives.WriteUInt64BigEndian(destination[8..], cookie);
        BinaryPrimitives.WriteUInt32BigEndian(destination[16..], length);
    }

    private static void WriteSimpleReply(Span<byte> destination, uint error, ulong cookie)
    {
        BinaryPrimitives.WriteUInt32BigEndian(destination, NbdProtocol.SimpleReplyMagic);
        BinaryPrimitives.WriteUInt32BigEndian(destination[4..], error);
        BinaryPrimitives.WriteUInt64BigEndian(destination[8..], cookie);
    }
}
