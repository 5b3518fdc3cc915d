using System.Runtime.InteropServices;
using Grpc.Backup.Protocol.V1;
using Grpc.Backup.Provider.Internal.Interop;
using Microsoft.Win32.SafeHandles;

namespace Grpc.Backup.Provider;

/// <summary>
/// A volume passed as a file descriptor (FILE_HANDLE): read with pread, released with fallocate(PUNCH_HOLE|KEEP_SIZE),
/// which the host's FUSE export turns into a discard on its fleecing image. The provider never learns a path. A file
/// that cannot punch holes (EOPNOTSUPP) is read without releasing (logged once); any other failure is a broken snapshot.
/// </summary>
public sealed class FileSnapshotVolume(string device, SafeFileHandle file, long size, BackupEventWriter events) : ISnapshotVolume
{
    private const int EOpNotSupp = 95;

    private int _punchDisabled;

    public string Device => device;

    public long Size => size;

    public async ValueTask ReadAsync(long offset, Memory<byte> buffer, CancellationToken cancellationToken)
    {
        int done = 0;
        try
        {
            while (done < buffer.Length)
            {
                int read = await RandomAccess.ReadAsync(file, buffer[done..], offset + done, cancellationToken);
                if (read == 0)
                {
                    throw new EndOfStreamException($"the file ends at {offset + done}, before the declared size {size}");
                }
                done += read;
            }
        }
        catch (Exception e) when ((SnapshotErrors.IsNbdFailure(e) || e is UnauthorizedAccessException) && !cancellationToken.IsCancellationRequested)
        {
            throw SnapshotErrors.Broken(device, $"reading {buffer.Length} bytes at offset {offset}", e);
        }
    }

    public async Task ReleaseAsync(long offset, long length, CancellationToken cancellationToken)
    {
        if (Volatile.Read(ref _punchDisabled) != 0)
        {
            return;
        }
        // fallocate on a FUSE file is one round trip to QEMU; short enough not to need a thread of its own.
        if (LibC.Fallocate((int)file.DangerousGetHandle(), LibC.FallocPunchHole | LibC.FallocKeepSize, offset, length) == 0)
        {
            return;
        }
        int errno = Marshal.GetLastPInvokeError();
        string message = Marshal.GetPInvokeErrorMessage(errno);
        if (errno != EOpNotSupp)
        {
            throw SnapshotErrors.Broken(device, $"punching {length} bytes at offset {offset}", new IOException(message));
        }
        if (Interlocked.Exchange(ref _punchDisabled, 1) == 0)
        {
            await events.LogAsync(LogRecord.Types.Level.Warning,
                $"{device}: the passed file cannot punch holes ({message}); the rest is read without releasing", cancellationToken);
        }
    }

    public ValueTask DisposeAsync()
    {
        file.Dispose();
        return ValueTask.CompletedTask;
    }
}
