using Microsoft.Win32.SafeHandles;

namespace Grpc.Backup.Providers.Directory.Internal;

/// <summary>
/// A full backup's image: a new sparse raw file of the volume's size, written with pwrite. Zero ranges are never
/// written, so they stay holes. Durability comes later: BackupCleanup fsyncs before it marks the archive complete.
/// </summary>
internal sealed class RawFileTarget : IVolumeTarget, IDisposable
{
    private readonly SafeFileHandle _handle;

    private RawFileTarget(SafeFileHandle handle)
    {
        _handle = handle;
    }

    public static RawFileTarget Create(string path, long size)
    {
        SafeFileHandle handle = File.OpenHandle(path, FileMode.CreateNew, FileAccess.ReadWrite);
        try
        {
            RandomAccess.SetLength(handle, size);
            return new RawFileTarget(handle);
        }
        catch
        {
            handle.Dispose();
            throw;
        }
    }

    /// <summary>An existing raw image opened to be read (an incremental's raw base); it must have the volume's size.</summary>
    public static RawFileTarget OpenReadOnly(string path, long size)
    {
        SafeFileHandle handle = File.OpenHandle(path, FileMode.Open, FileAccess.Read);
        if (RandomAccess.GetLength(handle) != size)
        {
            handle.Dispose();
            throw new IOException($"{path} does not have the volume's {size} bytes");
        }
        return new RawFileTarget(handle);
    }

    public ValueTask WriteAsync(long offset, ReadOnlyMemory<byte> data, CancellationToken cancellationToken) =>
        RandomAccess.WriteAsync(_handle, data, offset, cancellationToken);

    public ValueTask WriteZeroesAsync(long offset, long length, CancellationToken cancellationToken) => ValueTask.CompletedTask;

    public async ValueTask ReadAsync(long offset, Memory<byte> buffer, CancellationToken cancellationToken)
    {
        for (int done = 0; done < buffer.Length;)
        {
            int read = await RandomAccess.ReadAsync(_handle, buffer[done..], offset + done, cancellationToken);
            if (read == 0)
            {
                throw new EndOfStreamException($"the image ends at {offset + done}");
            }
            done += read;
        }
    }

    public Task FinishAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public ValueTask DisposeAsync()
    {
        _handle.Dispose();
        return ValueTask.CompletedTask;
    }

    public void Dispose() => _handle.Dispose();
}
