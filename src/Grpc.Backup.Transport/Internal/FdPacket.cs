using System.Buffers.Binary;

namespace Grpc.Backup.Transport.Internal;

/// <summary>
/// The sideband packet layout (protos/README.md, "Packet format"):
/// magic "GBFD", version 1, type, count (u16 little-endian), 16-byte token, then one kind byte per fd.
/// </summary>
internal static class FdPacket
{
    public const int HeaderLength = 24;
    public const int MaxFds = 64;
    public const int MaxLength = HeaderLength + MaxFds;
    public const byte Version = 1;
    public const byte TypeHello = 1;
    public const byte TypeTransfer = 2;

    public const int MagicOffset = 0;
    public const int VersionOffset = 4;
    public const int TypeOffset = 5;
    public const int CountOffset = 6;
    public const int TokenOffset = 8;
    public const int KindsOffset = HeaderLength;

    /// <summary>ASCII "GBFD".</summary>
    public static ReadOnlySpan<byte> Magic => "GBFD"u8;

    public static byte[] CreateHello(FdToken channelId) => Create(TypeHello, channelId, []);

    public static byte[] CreateTransfer(FdToken token, ReadOnlySpan<FdKind> kinds) => Create(TypeTransfer, token, kinds);

    private static byte[] Create(byte type, FdToken token, ReadOnlySpan<FdKind> kinds)
    {
        var packet = new byte[HeaderLength + kinds.Length];
        Magic.CopyTo(packet);
        packet[VersionOffset] = Version;
        packet[TypeOffset] = type;
        BinaryPrimitives.WriteUInt16LittleEndian(packet.AsSpan(CountOffset), (ushort)kinds.Length);
        token.CopyTo(packet.AsSpan(TokenOffset));
        for (int i = 0; i < kinds.Length; i++)
        {
            packet[KindsOffset + i] = (byte)kinds[i];
        }

        return packet;
    }
}
