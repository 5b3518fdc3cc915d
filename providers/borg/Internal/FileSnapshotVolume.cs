using Grpc.Backup.Protocol.V1;
using Grpc.Backup.Provider;
using Microsoft.Win32.SafeHandles;

namespace Grpc.Backup.Providers.Borg.Internal;

/// <summary>
/// A volume passed as a file descriptor (FILE_HANDLE): read with pread, released with
/// fallocate(PUNCH_HOLE|KEEP_SIZE). A file that cannot punch holes is read without releasing (logged once).
/// </summary>
internal sealed class FileSnapshotVolume(string device, SafeFileHandle file, long size, BackupEventWriter events) : IVolumeSource
{
    private int _punchDisabled;

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
        catch (Exception e) when (e is IOException or UnauthorizedAccessException && !cancellationToken.IsCancellationRequested)
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
        int result = Interop.LibC.Fallocate((int)file.DangerousGetHandle(), Interop.LibC.FallocFlPunchHole | Interop.LibC.FallocFlKeepSize,
            offset, length);
        if (result != 0 && Interlocked.Exchange(ref _punchDisabled, 1) == 0)
        {
            await events.LogAsync(LogRecord.Types.Level.Warning,
                $"{device}: the passed file cannot punch holes (errno {System.Runtime.InteropServices.Marshal.GetLastPInvokeError()}); "
                + "the rest is read without releasing", cancellationToken);
        }
    }

    public ValueTask DisposeAsync()
    {
        file.Dispose();
        return ValueTask.CompletedTask;
    }
}
