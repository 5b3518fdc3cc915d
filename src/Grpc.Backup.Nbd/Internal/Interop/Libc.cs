using System.Net.Sockets;
using System.Runtime.InteropServices;

namespace Grpc.Backup.Nbd.Internal.Interop;

/// <summary>
/// socketpair(2), which .NET has no managed API for. The guard hands its client one end of a connected pair: no path
/// exists that another process could connect to first.
/// </summary>
internal static unsafe partial class Libc
{
    private const string LibraryName = "libc";
    private const int AfUnix = 1;
    private const int SockStream = 1;
    private const int SockCloexec = 0x80000;

    [LibraryImport(LibraryName, SetLastError = true)]
    private static partial int socketpair(int domain, int type, int protocol, int* sv);

    /// <summary>A connected pair of Unix stream sockets, both close-on-exec.</summary>
    public static (Socket First, Socket Second) CreateStreamPair()
    {
        int* fds = stackalloc int[2];
        if (socketpair(AfUnix, SockStream | SockCloexec, 0, fds) != 0)
        {
            throw new SocketException(Marshal.GetLastPInvokeError());
        }

        var first = new Socket(new SafeSocketHandle(fds[0], ownsHandle: true));
        Socket second;
        try
        {
            second = new Socket(new SafeSocketHandle(fds[1], ownsHandle: true));
        }
        catch
        {
            first.Dispose();
            throw;
        }

        return (first, second);
    }
}
