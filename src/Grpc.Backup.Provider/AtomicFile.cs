using System.Runtime.InteropServices;
using Grpc.Backup.Provider.Internal.Interop;

namespace Grpc.Backup.Provider;

/// <summary>
/// Replaces a file so that a reader, or the repository after a crash, sees either the old or the new content: write a
/// temp file beside it, fsync, rename over, fsync the directory.
/// </summary>
public static class AtomicFile
{
    public static void Write(string path, ReadOnlySpan<byte> content)
    {
        string temp = TempPathFor(path);
        try
        {
            using (var handle = File.OpenHandle(temp, FileMode.CreateNew, FileAccess.Write))
            {
                RandomAccess.Write(handle, content, 0);
                RandomAccess.FlushToDisk(handle);
            }
            File.Move(temp, path, overwrite: true);
        }
        catch
        {
            File.Delete(temp);
            throw;
        }
        SyncDirectory(Path.GetDirectoryName(path)!);
    }

    /// <summary>Copies <paramref name="source"/> (read with pread from offset 0) into <paramref name="path"/> atomically.</summary>
    public static async Task CopyFromAsync(Microsoft.Win32.SafeHandles.SafeFileHandle source, string path, long maxBytes,
        CancellationToken cancellationToken)
    {
        string temp = TempPathFor(path);
        try
        {
            using (var target = File.OpenHandle(temp, FileMode.CreateNew, FileAccess.Write))
            {
                byte[] buffer = new byte[1024 * 1024];
                long offset = 0;
                while (offset < maxBytes)
                {
                    int read = await RandomAccess.ReadAsync(source, buffer.AsMemory(0, (int)Math.Min(buffer.Length, maxBytes - offset)),
                        offset, cancellationToken);
                    if (read == 0)
                    {
                        break;
                    }
                    await RandomAccess.WriteAsync(target, buffer.AsMemory(0, read), offset, cancellationToken);
                    offset += read;
                }
                RandomAccess.FlushToDisk(target);
            }
            File.Move(temp, path, overwrite: true);
        }
        catch
        {
            File.Delete(temp);
            throw;
        }
        SyncDirectory(Path.GetDirectoryName(path)!);
    }

    /// <summary>Makes renames and creations inside <paramref name="directory"/> durable.</summary>
    public static void SyncDirectory(string directory)
    {
        int fd = LibC.Open(directory, LibC.ORdOnly | LibC.ODirectory | LibC.OCloExec);
        if (fd < 0)
        {
            int errno = Marshal.GetLastPInvokeError();
            throw new IOException($"open {directory} failed: {Marshal.GetPInvokeErrorMessage(errno)}", errno);
        }
        try
        {
            if (LibC.Fsync(fd) != 0)
            {
                int errno = Marshal.GetLastPInvokeError();
                throw new IOException($"fsync {directory} failed: {Marshal.GetPInvokeErrorMessage(errno)}", errno);
            }
        }
        finally
        {
            _ = LibC.Close(fd);
        }
    }

    private static string TempPathFor(string path) =>
        path + ".tmp-" + Convert.ToHexStringLower(System.Security.Cryptography.RandomNumberGenerator.GetBytes(6));
}
