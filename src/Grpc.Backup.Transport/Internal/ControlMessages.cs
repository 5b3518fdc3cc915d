using System.Runtime.InteropServices;
using Grpc.Backup.Transport.Internal.Interop;

namespace Grpc.Backup.Transport.Internal;

/// <summary>
/// CMSG_SPACE / CMSG_LEN / CMSG_NXTHDR in managed code. struct cmsghdr is
/// { size_t cmsg_len; int cmsg_level; int cmsg_type; } and every header and payload is
/// aligned to sizeof(size_t). Fields are in native byte order.
/// </summary>
internal static class ControlMessages
{
    private static readonly int _alignment = nint.Size;

    /// <summary>sizeof(struct cmsghdr), already aligned.</summary>
    public static int HeaderSize { get; } = Align(nint.Size + (2 * sizeof(int)));

    public static int Align(int length) => (length + _alignment - 1) & ~(_alignment - 1);

    /// <summary>CMSG_SPACE: room one control message with <paramref name="dataLength"/> payload bytes takes.</summary>
    public static int Space(int dataLength) => HeaderSize + Align(dataLength);

    /// <summary>CMSG_LEN: the cmsg_len value for <paramref name="dataLength"/> payload bytes.</summary>
    public static int Length(int dataLength) => HeaderSize + dataLength;

    /// <summary>Writes one SOL_SOCKET/SCM_RIGHTS message carrying <paramref name="fds"/>; returns its space.</summary>
    public static int WriteRights(Span<byte> buffer, ReadOnlySpan<int> fds)
    {
        int dataLength = fds.Length * sizeof(int);
        int space = Space(dataLength);
        Span<byte> message = buffer[..space];
        message.Clear();
        nuint length = (nuint)Length(dataLength);
        int level = Libc.SolSocket;
        int type = Libc.ScmRights;
        MemoryMarshal.Write(message, in length);
        MemoryMarshal.Write(message[nint.Size..], in level);
        MemoryMarshal.Write(message[(nint.Size + sizeof(int))..], in type);
        MemoryMarshal.AsBytes(fds).CopyTo(message[HeaderSize..]);
        return space;
    }

    /// <summary>
    /// Walks every control message the kernel returned. Fds are only ever carried by
    /// SOL_SOCKET/SCM_RIGHTS, so those are collected from all such messages (the caller must
    /// close every one of them on any rejection); anything else is only counted.
    /// </summary>
    public static ControlSummary Parse(ReadOnlySpan<byte> control, List<int> fds)
    {
        int rightsMessages = 0;
        int otherMessages = 0;
        int offset = 0;
        while (offset + HeaderSize <= control.Length)
        {
            ReadOnlySpan<byte> header = control[offset..];
            ulong length = MemoryMarshal.Read<nuint>(header);
            if (length < (ulong)HeaderSize || length > (ulong)(control.Length - offset))
            {
                // CMSG_NXTHDR stops here too: a malformed length cannot be followed safely.
                // The kernel never produces one, even when it truncates.
                break;
            }

            int level = MemoryMarshal.Read<int>(header[nint.Size..]);
            int type = MemoryMarshal.Read<int>(header[(nint.Size + sizeof(int))..]);
            ReadOnlySpan<byte> data = header[HeaderSize..(int)length];
            if (level == Libc.SolSocket && type == Libc.ScmRights)
            {
                rightsMessages++;
                foreach (int fd in MemoryMarshal.Cast<byte, int>(data[..(data.Length / sizeof(int) * sizeof(int))]))
                {
                    fds.Add(fd);
                }
            }
            else
            {
                otherMessages++;
            }

            offset += Align((int)length);
        }

        return new ControlSummary(rightsMessages, otherMessages);
    }
}
