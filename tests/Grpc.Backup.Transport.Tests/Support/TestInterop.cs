using System.Net.Sockets;
using System.Runtime.InteropServices;

namespace Grpc.Backup.Transport.Tests.Support;

internal static unsafe partial class TestInterop
{
    [LibraryImport("libc", SetLastError = true)]
    private static partial int socketpair(int domain, int type, int protocol, int* sv);

    [LibraryImport("libc")]
    public static partial uint geteuid();

    [LibraryImport("libc", SetLastError = true)]
    private static partial int dup(int fd);

    [LibraryImport("libc", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int mknod(string path, uint mode, ulong dev);

    /// <summary>
    /// A socket inode nobody listens on, as a crashed process leaves behind. (A managed Socket
    /// cannot make one: .NET removes the file of a socket it bound when it is disposed.)
    /// </summary>
    public static void CreateStaleSocketFile(string path)
    {
        const uint SocketType = 0xC000;
        if (mknod(path, SocketType | Convert.ToUInt32("600", 8), 0) != 0)
        {
            throw new IOException($"mknod failed: {Marshal.GetLastPInvokeErrorMessage()}");
        }
    }

    /// <summary>
    /// The socket as a process receives it from systemd: a bare fd, not a Socket that bound a path
    /// (which .NET would unlink on dispose).
    /// </summary>
    public static Socket AsInheritedSocket(Socket socket)
    {
        int fd = dup((int)socket.Handle);
        if (fd < 0)
        {
            throw new IOException($"dup failed: {Marshal.GetLastPInvokeErrorMessage()}");
        }

        return new Socket(new SafeSocketHandle(fd, ownsHandle: true));
    }

    /// <summary>A connected AF_UNIX SOCK_STREAM pair, as an NBD socket and its far end.</summary>
    public static (Socket Near, Socket Far) StreamSocketPair()
    {
        const int AfUnix = 1;
        const int SockStream = 1;
        const int SockCloexec = 0x80000;
        int* fds = stackalloc int[2];
        if (socketpair(AfUnix, SockStream | SockCloexec, 0, fds) != 0)
        {
            throw new IOException($"socketpair failed: {Marshal.GetLastPInvokeErrorMessage()}");
        }

        return (new Socket(new SafeSocketHandle(fds[0], true)), new Socket(new SafeSocketHandle(fds[1], true)));
    }
}
