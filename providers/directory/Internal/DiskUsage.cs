using System.Buffers.Binary;
using System.Runtime.InteropServices;
using Grpc.Backup.Providers.Directory.Internal.Interop;

namespace Grpc.Backup.Providers.Directory.Internal;

/// <summary>
/// Allocated bytes (st_blocks * 512), as <c>du</c> counts them: what an archive really occupies. Sparse images make
/// the apparent size meaningless for "how much space does this backup take".
/// </summary>
internal static class DiskUsage
{
    /// <summary>The allocated bytes of one file, without following a symlink.</summary>
    public static unsafe long OfFile(string path)
    {
        byte* buffer = stackalloc byte[LibC.StatxSize];
        if (LibC.Statx(LibC.AtFdCwd, path, LibC.AtSymlinkNoFollow, LibC.StatxBlocks, buffer) != 0)
        {
            int errno = Marshal.GetLastPInvokeError();
            throw new IOException($"statx {path} failed: {Marshal.GetPInvokeErrorMessage(errno)}", errno);
        }
        ulong blocks = BinaryPrimitives.ReadUInt64LittleEndian(new ReadOnlySpan<byte>(buffer + LibC.StatxBlocksOffset, 8));
        return checked((long)blocks * 512);
    }

    /// <summary>The allocated bytes of a directory tree (the directory itself, its files and subdirectories).</summary>
    public static long OfTree(string directory)
    {
        long total = OfFile(directory);
        foreach (FileSystemInfo entry in new DirectoryInfo(directory).EnumerateFileSystemInfos("*", SearchOption.AllDirectories))
        {
            try
            {
                total += OfFile(entry.FullName);
            }
            catch (IOException) when (!Path.Exists(entry.FullName))
            {
                // Removed while we walked (a temp file renamed into place): it no longer occupies anything.
            }
        }
        return total;
    }
}
