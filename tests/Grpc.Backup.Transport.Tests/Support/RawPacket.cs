using System.Buffers.Binary;

namespace Grpc.Backup.Transport.Tests.Support;

/// <summary>Builds sideband packets byte by byte, including broken ones.</summary>
internal static class RawPacket
{
    public static byte[] Transfer(FdToken token, params FdKind[] kinds) =>
        Build("GBFD"u8, 1, 2, (ushort)kinds.Length, token.ToByteArray(), [.. kinds.Select(k => (byte)k)]);

    public static byte[] Build(ReadOnlySpan<byte> magic, byte version, byte type, ushort count, byte[] token, byte[] tail)
    {
        var packet = new byte[24 + tail.Length];
        magic.CopyTo(packet);
        packet[4] = version;
        packet[5] = type;
        BinaryPrimitives.WriteUInt16LittleEndian(packet.AsSpan(6), count);
        token.CopyTo(packet, 8);
        tail.CopyTo(packet, 24);
        return packet;
    }

    public static FdKind[] Files(int count) => [.. Enumerable.Repeat(FdKind.File, count)];
}
