using System.Runtime.InteropServices;

namespace Grpc.Backup.Provider.Internal.Interop;

/// <summary>
/// What .NET has no managed API for: directory fsync for <see cref="AtomicFile"/>, hole punching in a passed snapshot
/// file for <see cref="FileSnapshotVolume"/>.
/// </summary>
internal static partial class LibC
{
    public const int ORdOnly = 0;
    public const int ODirectory = 0x10000;
    public const int OCloExec = 0x80000;
    public const int FallocKeepSize = 0x01;
    public const int FallocPunchHole = 0x02;

    [LibraryImport("libc", EntryPoint = "open", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    public static partial int Open(string path, int flags);

    [LibraryImport("libc", EntryPoint = "fsync", SetLastError = true)]
    public static partial int Fsync(int fd);

    [LibraryImport("libc", EntryPoint = "fallocate", SetLastError = true)]
    public static partial int Fallocate(int fd, int mode, long offset, long length);

    [LibraryImport("libc", EntryPoint = "close", SetLastError = true)]
    public static partial int Close(int fd);
}
