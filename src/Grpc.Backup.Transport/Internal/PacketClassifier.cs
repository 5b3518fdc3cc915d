using System.Buffers.Binary;
using Grpc.Backup.Transport.Internal.Interop;

namespace Grpc.Backup.Transport.Internal;

/// <summary>
/// The receiving rules of protos/README.md ("Receiving, strictly"), as a pure function of
/// what one recvmsg returned, so that they can be read and tested in one place.
/// </summary>
internal static class PacketClassifier
{
    public static PacketVerdict Classify(ReadOnlySpan<byte> data, int messageFlags, int fdCount, ControlSummary control)
    {
        // Magic, version and type decide whether this is our protocol at all; if not, nothing
        // else in the packet can be trusted, not even its token.
        if (data.Length < FdPacket.CountOffset)
        {
            return PacketVerdict.ProtocolError($"packet of {data.Length} bytes is too short for a header");
        }

        if (!data[..FdPacket.Magic.Length].SequenceEqual(FdPacket.Magic))
        {
            return PacketVerdict.ProtocolError($"bad magic {Convert.ToHexStringLower(data[..FdPacket.Magic.Length])}");
        }

        byte version = data[FdPacket.VersionOffset];
        if (version != FdPacket.Version)
        {
            return PacketVerdict.ProtocolError($"unknown version {version}");
        }

        byte type = data[FdPacket.TypeOffset];
        return type switch
        {
            FdPacket.TypeHello => ClassifyHello(data, messageFlags, fdCount, control),
            FdPacket.TypeTransfer => ClassifyTransfer(data, messageFlags, fdCount, control),
            _ => PacketVerdict.ProtocolError($"unknown packet type {type}"),
        };
    }

    private static PacketVerdict ClassifyHello(ReadOnlySpan<byte> data, int messageFlags, int fdCount, ControlSummary control)
    {
        // A HELLO is not a transfer, so a malformed one cannot be "rejected": the connection
        // is not usable without a channel id.
        if ((messageFlags & (Libc.MsgTrunc | Libc.MsgCtrunc)) != 0 || data.Length != FdPacket.HeaderLength)
        {
            return PacketVerdict.ProtocolError($"malformed HELLO of {data.Length} bytes");
        }

        if (fdCount != 0 || control.RightsMessages != 0 || control.OtherMessages != 0)
        {
            return PacketVerdict.ProtocolError("HELLO carries control data");
        }

        int count = BinaryPrimitives.ReadUInt16LittleEndian(data[FdPacket.CountOffset..]);
        if (count != 0)
        {
            return PacketVerdict.ProtocolError($"HELLO with count {count}");
        }

        ReadOnlySpan<byte> id = data[FdPacket.TokenOffset..FdPacket.HeaderLength];
        return id.ContainsAnyExcept((byte)0)
            ? PacketVerdict.Hello(FdToken.FromBytes(id))
            : PacketVerdict.ProtocolError("HELLO with an all-zero channel id");
    }

    private static PacketVerdict ClassifyTransfer(ReadOnlySpan<byte> data, int messageFlags, int fdCount, ControlSummary control)
    {
        if (data.Length < FdPacket.HeaderLength)
        {
            return PacketVerdict.Rejected(null, $"packet of {data.Length} bytes is shorter than the {FdPacket.HeaderLength}-byte header");
        }

        int count = BinaryPrimitives.ReadUInt16LittleEndian(data[FdPacket.CountOffset..]);
        ReadOnlySpan<byte> tokenBytes = data[FdPacket.TokenOffset..FdPacket.HeaderLength];

        // An all-zero token is never valid and cannot be claimed, so it is not remembered.
        FdToken? token = tokenBytes.ContainsAnyExcept((byte)0) ? FdToken.FromBytes(tokenBytes) : null;

        string? reason = Check(data, messageFlags, fdCount, control, count);
        if (reason is null && token is null)
        {
            reason = "all-zero transfer token";
        }

        if (reason is not null)
        {
            return PacketVerdict.Rejected(token, reason);
        }

        var kinds = new FdKind[count];
        for (int i = 0; i < count; i++)
        {
            byte kind = data[FdPacket.KindsOffset + i];
            if (!Enum.IsDefined((FdKind)kind))
            {
                return PacketVerdict.Rejected(token, $"kind byte {kind} at index {i} is not a known FdKind");
            }

            kinds[i] = (FdKind)kind;
        }

        return PacketVerdict.Transfer(token!.Value, kinds);
    }

    private static string? Check(ReadOnlySpan<byte> data, int messageFlags, int fdCount, ControlSummary control, int count)
    {
        if ((messageFlags & Libc.MsgTrunc) != 0)
        {
            return $"packet truncated (MSG_TRUNC): longer than {FdPacket.MaxLength} bytes";
        }

        if ((messageFlags & Libc.MsgCtrunc) != 0)
        {
            return $"control data truncated (MSG_CTRUNC): more than {FdPacket.MaxFds} fds sent";
        }

        if (control.OtherMessages != 0)
        {
            return $"{control.OtherMessages} control message(s) other than SCM_RIGHTS";
        }

        if (count is < 1 or > FdPacket.MaxFds)
        {
            return $"count {count} is outside 1..{FdPacket.MaxFds}";
        }

        if (data.Length != FdPacket.HeaderLength + count)
        {
            return $"packet is {data.Length} bytes, expected {FdPacket.HeaderLength} + count {count} = {FdPacket.HeaderLength + count}";
        }

        if (control.RightsMessages != 1)
        {
            return $"expected exactly one SCM_RIGHTS control message, got {control.RightsMessages}";
        }

        if (fdCount != count)
        {
            return $"header count {count} but the control data carries {fdCount} fds";
        }

        return null;
    }
}
