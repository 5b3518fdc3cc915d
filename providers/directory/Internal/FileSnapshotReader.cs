using System.Runtime.InteropServices;
using Grpc.Backup.Providers.Directory.Internal.Interop;
using Microsoft.Win32.SafeHandles;

namespace Grpc.Backup.Providers.Directory.Internal;

/// <summary>
/// The FILE_HANDLE mechanism: pread on the passed fd, fallocate(PUNCH_HOLE|KEEP_SIZE) after storing, which the host's
/// FUSE export turns into a discard on its fleecing image. The provider never learns a path.
/// </summary>
internal sealed class FileSnapshotReader(SafeFileHandle file) : ISnapshotReader
{
    private const int EOpNotSupp = 95;

    public bool CanDiscard => true;

    public async ValueTask ReadAsync(long offset, Memory<byte> buffer, CancellationToken cancellationToken)
    {
        int done = 0;
        while (done < buffer.Length)
        {
            int read = await RandomAccess.ReadAsync(file, buffer[done..], offset + done, cancellationToken);
            if (read == 0)
            {
                throw new IOException($"the snapshot file ended at offset {offset + done}");
            }
            done += read;
        }
    }

    public Task<string?> DiscardAsync(long offset, long length, CancellationToken cancellationToken)
    {
        // fallocate on a FUSE file is one round trip to QEMU; short enough not to need a thread of its own.
        if (LibC.Fallocate((int)file.DangerousGetHandle(), LibC.FallocPunchHole | LibC.FallocKeepSize, offset, length) == 0)
        {
            return Task.FromResult<string?>(null);
        }
        int errno = Marshal.GetLastPInvokeError();
        string message = Marshal.GetPInvokeErrorMessage(errno);
        return errno == EOpNotSupp
            ? Task.FromResult<string?>(message)
            : throw new IOException($"punching {length} bytes at offset {offset} failed: {message}");
    }

    public ValueTask DisposeAsync()
    {
        file.Dispose();
        return ValueTask.CompletedTask;
    }
}
