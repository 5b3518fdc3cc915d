using System.Runtime.InteropServices;
using Grpc.Backup.Transport.Internal;

namespace Grpc.Backup.Transport.Tests;

public sealed class ControlMessagesTests
{
    [Fact]
    public void The_receive_buffer_has_room_for_exactly_sixty_four_fds()
    {
        // CMSG_SPACE(64 * sizeof(int)) on 64-bit Linux: 16-byte header + 256 bytes.
        Assert.Equal(272, SeqpacketIo.ReceiveControlCapacity);
        Assert.Equal(89, SeqpacketIo.ReceiveDataCapacity);
    }

    [Fact]
    public void Parsing_walks_every_control_message_and_collects_fds_only_from_scm_rights()
    {
        var buffer = new byte[256];
        int first = ControlMessages.WriteRights(buffer, [10, 11]);

        // An SCM_CREDENTIALS-like message (level 1, type 2) whose payload must not be read as fds.
        Span<byte> other = buffer.AsSpan(first);
        nuint otherLength = (nuint)ControlMessages.Length(12);
        MemoryMarshal.Write(other, in otherLength);
        MemoryMarshal.Write(other[nint.Size..], 1);
        MemoryMarshal.Write(other[(nint.Size + 4)..], 2);
        MemoryMarshal.Write(other[ControlMessages.HeaderSize..], 99);
        int second = ControlMessages.Space(12);
        int third = ControlMessages.WriteRights(buffer.AsSpan(first + second), [12]);

        var fds = new List<int>();
        ControlSummary summary = ControlMessages.Parse(buffer.AsSpan(0, first + second + third), fds);

        Assert.Equal([10, 11, 12], fds);
        Assert.Equal(new ControlSummary(2, 1), summary);
    }
}
