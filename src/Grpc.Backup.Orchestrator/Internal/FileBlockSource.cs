using System.Runtime.InteropServices;
using Grpc.Backup.Orchestrator.Internal.Interop;
using Microsoft.Win32.SafeHandles;

namespace Grpc.Backup.Orchestrator.Internal;

/// <summary>
/// A regular file or block device read with pread. A regular file's holes are found with SEEK_DATA/SEEK_HOLE and
/// given as zero ranges, so they are never read (a provider's sparse scratch file, say); a block device, or a file
/// system without the calls, is one data range whose zero runs are found by reading.
/// </summary>
internal sealed class FileBlockSource(SafeFileHandle handle) : IBlockSource
{
    public async IAsyncEnumerable<(long Offset, long Length, bool Zero)> GetExtentsAsync(long size,
        [System.Runtime.CompilerServices.EnumeratorCancellation] CancellationToken cancellationToken)
    {
        await Task.CompletedTask;
        long offset = 0;
        while (offset < size)
        {
            cancellationToken.ThrowIfCancellationRequested();
            long data = Libc.lseek(handle, offset, Libc.SeekData);
            if (data < 0)
            {
                int errno = Marshal.GetLastPInvokeError();
                if (errno != Libc.Enxio)
                {
                    // No allocation map here (a block device answers EINVAL): read everything that is left.
                    yield return (offset, size - offset, false);
                    yield break;
                }
                // No data after offset. The file was checked to have the archive's size, but the provider owns it:
                // a file cut short since must fail as a short read would, not restore as zeros.
                CheckStillWhole(size);
                data = size;
            }
            data = Math.Min(data, size);
            if (data > offset)
            {
                yield return (offset, data - offset, true);
                offset = data;
                if (offset == size)
                {
                    yield break;
                }
            }
            long hole = Libc.lseek(handle, offset, Libc.SeekHole);
            hole = hole < 0 ? size : Math.Min(hole, size);
            if (hole <= offset)
            {
                // The file changed under us: fall back to reading the rest.
                yield return (offset, size - offset, false);
                yield break;
            }
            yield return (offset, hole - offset, false);
            offset = hole;
        }
    }

    public async ValueTask ReadAsync(long offset, Memory<byte> buffer, CancellationToken cancellationToken)
    {
        int done = 0;
        while (done < buffer.Length)
        {
            int read = await RandomAccess.ReadAsync(handle, buffer[done..], offset + done, cancellationToken);
            if (read == 0)
            {
                throw new BackupException($"restore source ended at {offset + done}, before its declared size");
            }
            done += read;
        }
    }

    public ValueTask DisposeAsync()
    {
        handle.Dispose();
        return ValueTask.CompletedTask;
    }

    private void CheckStillWhole(long size)
    {
        long length = RandomAccess.GetLength(handle);
        if (length < size)
        {
            throw new BackupException($"restore source ended at {length}, before its declared size");
        }
    }
}
