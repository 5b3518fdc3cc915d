using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;

namespace Grpc.Backup.Orchestrator.Internal.Interop;

/// <summary>
/// The calls restore needs to handle paths a provider names, and targets other users could race, without following a
/// symlink or blocking: open with O_PATH|O_NOFOLLOW, openat2 (no libc wrapper on Debian 12's glibc, so the raw
/// syscall), mkdirat, unlinkat, fstatvfs, lseek (SEEK_DATA/SEEK_HOLE); and flock(2) for the guest lock, which .NET has no explicit API for
/// (FileShare.None takes one implicitly, but silently not at all when file locking is disabled by configuration). Constants are the Linux values, identical on x86_64 and arm64 except the
/// syscall number (437 on both).
/// </summary>
internal static unsafe partial class Libc
{
    private const string LibraryName = "libc";

    internal const int ORdonly = 0;
    internal const int ORdwr = 2;
    internal const int OCreat = 0x40;
    internal const int OExcl = 0x80;
    internal const int ONoctty = 0x100;
    internal const int ONonblock = 0x800;
    internal const int ODirectory = 0x10000;
    internal const int ONofollow = 0x20000;
    internal const int OCloexec = 0x80000;
    internal const int OPath = 0x200000;

    internal const ulong ResolveNoSymlinks = 0x04;
    internal const ulong ResolveBeneath = 0x08;

    internal const int AtRemovedir = 0x200;

    internal const int LockExclusive = 2;
    internal const int LockNonBlocking = 4;
    internal const int Ewouldblock = 11;
    internal const int Eintr = 4;

    internal const int Eexist = 17;
    internal const int Eloop = 40;
    internal const int Enotdir = 20;
    internal const int Exdev = 18;

    private const long SysOpenat2 = 437;

    [LibraryImport(LibraryName, EntryPoint = "open", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    internal static partial int open(string path, int flags, uint mode);

    /// <summary>open(2) as a handle: File.OpenHandle would take its own shared flock, which conflicts with the exclusive one.</summary>
    [LibraryImport(LibraryName, EntryPoint = "open", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    internal static partial SafeFileHandle OpenHandle(string path, int flags, int mode);

    [LibraryImport(LibraryName, EntryPoint = "flock", SetLastError = true)]
    internal static partial int Flock(SafeFileHandle fd, int operation);

    [LibraryImport(LibraryName, SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    internal static partial int mkdirat(int dirfd, string path, uint mode);

    [LibraryImport(LibraryName, SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    internal static partial int unlinkat(int dirfd, string path, int flags);

    [LibraryImport(LibraryName, SetLastError = true)]
    internal static partial int fstatvfs(int fd, StatVfs* buffer);

    internal const int SeekData = 3;
    internal const int SeekHole = 4;
    internal const int Enxio = 6;

    /// <summary>lseek(2), for SEEK_DATA/SEEK_HOLE: a sparse file's allocation map without reading it.</summary>
    [LibraryImport(LibraryName, SetLastError = true)]
    internal static partial long lseek(SafeFileHandle fd, long offset, int whence);

    [LibraryImport(LibraryName, SetLastError = true)]
    private static partial long syscall(long number, long dirfd, byte* path, OpenHow* how, nuint size);

    /// <summary>openat2(2): <paramref name="path"/> resolved under <paramref name="dirfd"/> with <paramref name="resolve"/> flags.</summary>
    internal static int openat2(int dirfd, string path, int flags, uint mode, ulong resolve)
    {
        var how = new OpenHow { Flags = (ulong)flags, Mode = mode, Resolve = resolve };
        byte[] bytes = System.Text.Encoding.UTF8.GetBytes(path + "\0");
        fixed (byte* p = bytes)
        {
            return (int)syscall(SysOpenat2, dirfd, p, &how, (nuint)sizeof(OpenHow));
        }
    }

    [StructLayout(LayoutKind.Sequential)]
    internal struct OpenHow
    {
        public ulong Flags;
        public ulong Mode;
        public ulong Resolve;
    }

    /// <summary>struct statvfs (glibc, 64-bit): only the leading fields are read.</summary>
    [StructLayout(LayoutKind.Sequential, Size = 112)]
    internal struct StatVfs
    {
        public ulong BlockSize;
        public ulong FragmentSize;
        public ulong Blocks;
        public ulong BlocksFree;
        public ulong BlocksAvailable;
    }
}
