using Grpc.Backup.Protocol;
using Grpc.Backup.Provider;
using Microsoft.Win32.SafeHandles;

namespace Grpc.Backup.Providers.Borg.Internal;

/// <summary>
/// Extracts one disk image from an archive (<c>borg extract --stdout</c>) into a sparse scratch file that is unlinked
/// at once, and returns a read-only handle of it: the host reads plain raw data from an fd and never needs a path,
/// a mount or a borg of its own, and nothing is left on disk once the handle is closed, even after a crash.
/// </summary>
internal static class ImageExtractor
{
    private const int BufferSize = 4 * 1024 * 1024;
    private const int BlockSize = 4096;

    public static async Task<SafeFileHandle> ExtractAsync(BorgRepository repository, BorgArchiveName archive, VolumeMetadata volume,
        string scratchDirectory, BandwidthThrottle bandwidth, CancellationToken cancellationToken)
    {
        Directory.CreateDirectory(scratchDirectory, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        string path = Path.Join(scratchDirectory, $"restore-{Guid.NewGuid():N}.raw");
        using SafeFileHandle scratch = File.OpenHandle(path, FileMode.CreateNew, FileAccess.ReadWrite, FileShare.ReadWrite);
        File.Delete(path);
        await using BorgProcess extract = repository.StartExtract(archive.BorgName, volume.MemberName);
        byte[] buffer = GC.AllocateUninitializedArray<byte>(BufferSize);
        long offset = 0;
        try
        {
            int read;
            while ((read = await extract.StandardOutput.ReadAtLeastAsync(buffer, BufferSize, throwOnEndOfStream: false, cancellationToken)) > 0)
            {
                if (offset + read > volume.SizeBytes)
                {
                    throw ContractErrors.ArchiveCorrupt(archive.Name, $"{volume.MemberName} is longer than {volume.SizeBytes} bytes");
                }
                await bandwidth.WaitAsync(read, cancellationToken);
                // Blocks of zeros stay holes; each run of data blocks is one write.
                int run = -1;
                for (int block = 0; block < read; block += BlockSize)
                {
                    int length = Math.Min(BlockSize, read - block);
                    bool data = buffer.AsSpan(block, length).ContainsAnyExcept((byte)0);
                    if (data && run < 0)
                    {
                        run = block;
                    }
                    else if (!data && run >= 0)
                    {
                        await RandomAccess.WriteAsync(scratch, buffer.AsMemory(run, block - run), offset + run, cancellationToken);
                        run = -1;
                    }
                }
                if (run >= 0)
                {
                    await RandomAccess.WriteAsync(scratch, buffer.AsMemory(run, read - run), offset + run, cancellationToken);
                }
                offset += read;
            }
            await extract.WaitAsync(cancellationToken);
        }
        catch (BorgException e)
        {
            throw BorgErrors.From(e, $"extracting {volume.MemberName} of {archive.Name}");
        }
        if (offset != volume.SizeBytes)
        {
            throw ContractErrors.ArchiveCorrupt(archive.Name, $"{volume.MemberName} has {offset} bytes, not {volume.SizeBytes}");
        }
        RandomAccess.SetLength(scratch, volume.SizeBytes);
        // The host gets a handle that cannot write: reopen the unlinked file read-only through /proc.
        return File.OpenHandle($"/proc/self/fd/{scratch.DangerousGetHandle()}", FileMode.Open, FileAccess.Read, FileShare.ReadWrite);
    }
}
