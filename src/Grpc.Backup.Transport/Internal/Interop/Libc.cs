using System.Runtime.InteropServices;

namespace Grpc.Backup.Transport.Internal.Interop;

/// <summary>
/// The few libc calls .NET has no managed API for: SCM_RIGHTS needs sendmsg/recvmsg
/// (dotnet/runtime#932), and the kind check needs the file type of an fd.
/// Constants are the Linux values, identical on every Linux architecture .NET runs on.
/// </summary>
internal static unsafe partial class Libc
{
    // The runtime maps "libc" to the C library's real soname (libc.so.6 on glibc).
    private const string LibraryName = "libc";

    internal const int SolSocket = 1;
    internal const int ScmRights = 1;
    internal const int SoType = 3;
    internal const int SockStream = 1;
    internal const int SockSeqpacket = 5;

    internal const int MsgCtrunc = 0x8;
    internal const int MsgTrunc = 0x20;
    internal const int MsgDontwait = 0x40;
    internal const int MsgNosignal = 0x4000;
    internal const int MsgCmsgCloexec = 0x40000000;

    internal const short PollIn = 0x1;

    internal const int AtFdcwd = -100;
    internal const int AtSymlinkNofollow = 0x100;
    internal const int AtEmptyPath = 0x1000;
    internal const uint StatxType = 0x1;
    internal const uint StatxIno = 0x100;
    internal const uint StatxUid = 0x8;
    internal const uint StatxSize = 0x200;

    internal const int Eintr = 4;
    internal const int Eagain = 11;
    internal const int Enoent = 2;
    internal const int Enotsock = 88;

    [LibraryImport(LibraryName, SetLastError = true)]
    internal static partial nint sendmsg(int sockfd, MsgHdr* msg, int flags);

    [LibraryImport(LibraryName, SetLastError = true)]
    internal static partial nint recvmsg(int sockfd, MsgHdr* msg, int flags);

    [LibraryImport(LibraryName, SetLastError = true)]
    internal static partial int poll(PollFd* fds, nuint nfds, int timeout);

    [LibraryImport(LibraryName, SetLastError = true)]
    internal static partial int getsockopt(int sockfd, int level, int optname, void* optval, uint* optlen);

    // statx rather than fstat: its struct layout is the same on every architecture,
    // whereas struct stat differs between x86_64 and arm64.
    [LibraryImport(LibraryName, SetLastError = true)]
    internal static partial int statx(int dirfd, byte* pathname, int flags, uint mask, StatxBuffer* statxbuf);

    [LibraryImport(LibraryName)]
    internal static partial uint geteuid();
}
