using System.Runtime.InteropServices;
using Grpc.Backup.Transport.Internal.Interop;

namespace Grpc.Backup.Transport.Internal;

/// <summary>
/// One packet in, one packet out, on a raw SOCK_SEQPACKET fd. Every call is non-blocking
/// (MSG_DONTWAIT) so that it behaves the same whether or not the managed Socket has put the
/// fd into O_NONBLOCK mode; callers wait for readiness themselves.
/// </summary>
internal static unsafe class SeqpacketIo
{
    /// <summary>
    /// One byte more than the largest valid packet: a longer packet then shows up either as
    /// MSG_TRUNC or as a length that does not match its count.
    /// </summary>
    public const int ReceiveDataCapacity = FdPacket.MaxLength + 1;

    /// <summary>Room for exactly 64 fds: a sender of more gets MSG_CTRUNC, never a silent success.</summary>
    public static int ReceiveControlCapacity { get; } = ControlMessages.Space(FdPacket.MaxFds * sizeof(int));

    /// <summary>sendmsg of one packet with its fds in one SCM_RIGHTS message; 0 or an errno.</summary>
    public static int TrySend(int socketFd, ReadOnlySpan<byte> data, ReadOnlySpan<int> fds)
    {
        // SCM_MAX_FD is 253; the protocol caps at 64, but raw test senders go beyond.
        Span<byte> control = fds.IsEmpty ? [] : stackalloc byte[ControlMessages.Space(fds.Length * sizeof(int))];
        int controlLength = fds.IsEmpty ? 0 : ControlMessages.WriteRights(control, fds);

        fixed (byte* dataPointer = data)
        fixed (byte* controlPointer = control)
        {
            var iov = new IoVec { Base = dataPointer, Length = (nuint)data.Length };
            var header = new MsgHdr
            {
                Iov = &iov,
                IovLength = 1,
                Control = controlLength == 0 ? null : controlPointer,
                ControlLength = (nuint)controlLength,
            };

            while (true)
            {
                nint sent = Libc.sendmsg(socketFd, &header, Libc.MsgNosignal | Libc.MsgDontwait);
                if (sent >= 0)
                {
                    // SOCK_SEQPACKET sends a record whole or not at all.
                    return 0;
                }

                int errno = Marshal.GetLastPInvokeError();
                if (errno != Libc.Eintr)
                {
                    return errno;
                }
            }
        }
    }

    /// <summary>
    /// recvmsg of one packet with MSG_CMSG_CLOEXEC. Returns the byte count (0 at end of stream),
    /// or minus the errno. <paramref name="fds"/> receives every fd of every SCM_RIGHTS message.
    /// </summary>
    public static int TryReceive(
        int socketFd,
        Span<byte> data,
        Span<byte> control,
        List<int> fds,
        out int messageFlags,
        out ControlSummary summary)
    {
        fixed (byte* dataPointer = data)
        fixed (byte* controlPointer = control)
        {
            var iov = new IoVec { Base = dataPointer, Length = (nuint)data.Length };
            var header = new MsgHdr
            {
                Iov = &iov,
                IovLength = 1,
                Control = controlPointer,
                ControlLength = (nuint)control.Length,
            };

            nint received;
            do
            {
                received = Libc.recvmsg(socketFd, &header, Libc.MsgCmsgCloexec | Libc.MsgDontwait);
            }
            while (received < 0 && Marshal.GetLastPInvokeError() == Libc.Eintr);

            if (received < 0)
            {
                messageFlags = 0;
                summary = default;
                return -Marshal.GetLastPInvokeError();
            }

            messageFlags = header.Flags;
            summary = ControlMessages.Parse(control[..(int)header.ControlLength], fds);
            return (int)received;
        }
    }

    /// <summary>Blocks the calling (dedicated) thread until the fd is readable, hung up or shut down.</summary>
    public static int WaitReadable(int socketFd)
    {
        var pollFd = new PollFd { Fd = socketFd, Events = Libc.PollIn };
        while (true)
        {
            int ready = Libc.poll(&pollFd, 1, -1);
            if (ready >= 0)
            {
                return 0;
            }

            int errno = Marshal.GetLastPInvokeError();
            if (errno != Libc.Eintr)
            {
                return errno;
            }
        }
    }
}
