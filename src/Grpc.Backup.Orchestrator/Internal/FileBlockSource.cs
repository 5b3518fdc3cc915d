using Microsoft.Win32.SafeHandles;

namespace Grpc.Backup.Orchestrator.Internal;

/// <summary>A regular file or block device read with pread; it has no allocation map, so zero runs are found by reading.</summary>
internal sealed class FileBlockSource(SafeFileHandle handle) : IBlockSource
{
    public async IAsyncEnumerable<(long Offset, long Length, bool Zero)> GetExtentsAsync(long size,
        [System.Runtime.CompilerServices.EnumeratorCancellation] CancellationToken cancellationToken)
    {
        await Task.CompletedTask;
        yield return (0, size, false);
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
}
