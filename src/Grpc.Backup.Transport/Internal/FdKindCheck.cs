using System.Runtime.InteropServices;
using Grpc.Backup.Transport.Internal.Interop;

namespace Grpc.Backup.Transport.Internal;

/// <summary>
/// Checks a received fd against its kind before anyone trusts it: the sender's declaration is
/// a claim, not a fact (protos/README.md, "Ownership and lifetime").
/// </summary>
internal static unsafe class FdKindCheck
{
    /// <summary>Null when <paramref name="handle"/> is of <paramref name="kind"/>, else what it actually is.</summary>
    public static string? Mismatch(SafeHandle handle, FdKind kind)
    {
        bool added = false;
        try
        {
            handle.DangerousAddRef(ref added);
            int fd = (int)handle.DangerousGetHandle();
            if (!TryGetFileType(fd, out ushort type, out int errno))
            {
                return $"fstat failed: {Marshal.GetPInvokeErrorMessage(errno)}";
            }

            bool matches = kind switch
            {
                FdKind.File => type == StatxBuffer.Regular,
                FdKind.BlockDevice => type == StatxBuffer.BlockDevice,
                FdKind.Pipe => type == StatxBuffer.Fifo,
                FdKind.NbdSocket => type == StatxBuffer.Socket && GetSocketType(fd) == Libc.SockStream,
                _ => false,
            };
            return matches ? null : Describe(fd, type);
        }
        finally
        {
            if (added)
            {
                handle.DangerousRelease();
            }
        }
    }

    /// <summary>SO_TYPE of the fd, or -1 when it is not a socket.</summary>
    public static int GetSocketType(int fd)
    {
        int value = 0;
        uint length = sizeof(int);
        return Libc.getsockopt(fd, Libc.SolSocket, Libc.SoType, &value, &length) == 0 ? value : -1;
    }

    private static bool TryGetFileType(int fd, out ushort type, out int errno)
    {
        StatxBuffer buffer = default;
        byte empty = 0;
        if (Libc.statx(fd, &empty, Libc.AtEmptyPath, Libc.StatxType, &buffer) != 0)
        {
            errno = Marshal.GetLastPInvokeError();
            type = 0;
            return false;
        }

        errno = 0;
        type = buffer.FileType;
        return true;
    }

    private static string Describe(int fd, ushort type) => type switch
    {
        StatxBuffer.Regular => "a regular file",
        StatxBuffer.BlockDevice => "a block device",
        StatxBuffer.Fifo => "a pipe",
        StatxBuffer.CharacterDevice => "a character device",
        StatxBuffer.Directory => "a directory",
        StatxBuffer.SymbolicLink => "a symbolic link",
        StatxBuffer.Socket => GetSocketType(fd) switch
        {
            Libc.SockStream => "a stream socket",
            Libc.SockSeqpacket => "a seqpacket socket",
            int socketType => $"a socket of type {socketType}",
        },
        _ => $"a file of type 0x{type:x4}",
    };
}
