using System.Runtime.InteropServices;

namespace Grpc.Backup.Containers.Internal.Interop;

/// <summary>
/// The libc calls .NET has no managed API for: an OS pipe whose read end can be handed to another process, chown (the
/// fresh restore target belongs to the container's root), and a mkdir that fails if the directory exists
/// (<see cref="Directory.CreateDirectory(string)"/> succeeds silently, which would hide a pre-existing target), and
/// non-blocking writes with poll, so a write to a reader that stopped reading can still be cancelled.
/// Constants are the Linux values, identical on x86_64 and arm64.
/// </summary>
internal static unsafe partial class Libc
{
    // The runtime maps "libc" to the C library's real soname (libc.so.6 on glibc).
    private const string LibraryName = "libc";

    internal const int OCloexec = 0x80000;
    internal const int Eexist = 17;
    internal const int Eintr = 4;
    internal const int Eagain = 11;
    internal const int Epipe = 32;

    internal const int FGetfl = 3;
    internal const int FSetfl = 4;
    internal const int ONonblock = 0x800;

    internal const short PollOut = 0x4;

    [LibraryImport(LibraryName, SetLastError = true)]
    internal static partial int pipe2(int* fds, int flags);

    [LibraryImport(LibraryName, SetLastError = true)]
    internal static partial nint write(int fd, byte* buffer, nuint count);

    [LibraryImport(LibraryName, SetLastError = true)]
    internal static partial int fcntl(int fd, int cmd, int arg);

    [LibraryImport(LibraryName, SetLastError = true)]
    internal static partial int poll(PollFd* fds, nuint nfds, int timeout);

    [LibraryImport(LibraryName, SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    internal static partial int lchown(string path, uint owner, uint group);

    [LibraryImport(LibraryName, SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    internal static partial int mkdir(string path, uint mode);

    internal const int OPath = 0x200000;
    internal const int ODirectory = 0x10000;
    internal const int ONofollow = 0x20000;

    [LibraryImport(LibraryName, EntryPoint = "open", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    internal static partial int open(string path, int flags, uint mode);
}
