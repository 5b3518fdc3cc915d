using System.Runtime.InteropServices;

namespace Grpc.Backup.Providers.Directory.Internal.Interop;

/// <summary>The few libc calls .NET has no managed API for: allocated size (statx) and directory fsync.</summary>
internal static unsafe partial class LibC
{
    public const int AtFdCwd = -100;
    public const int AtSymlinkNoFollow = 0x100;
    public const uint StatxBlocks = 0x400;

    /// <summary>Size of struct statx; its layout is the same on every architecture.</summary>
    public const int StatxSize = 256;

    /// <summary>Offset of stx_blocks (u64, 512-byte units) in struct statx.</summary>
    public const int StatxBlocksOffset = 48;

    [LibraryImport("libc", EntryPoint = "statx", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    public static partial int Statx(int dirFd, string path, int flags, uint mask, byte* buffer);

    [LibraryImport("libc", EntryPoint = "open", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    public static partial int Open(string path, int flags);

    [LibraryImport("libc", EntryPoint = "fsync", SetLastError = true)]
    public static partial int Fsync(int fd);

    [LibraryImport("libc", EntryPoint = "close", SetLastError = true)]
    public static partial int Close(int fd);
}
