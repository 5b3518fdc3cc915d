using System.ComponentModel;
using System.Runtime.InteropServices;
using Grpc.Backup.Containers.Internal.Interop;
using Microsoft.Win32.SafeHandles;

namespace Grpc.Backup.Containers.Internal;

/// <summary>
/// Writes to the write end of an OS pipe without ever blocking a thread in write(2): the fd is made non-blocking and
/// a full pipe is waited on with short polls, so cancelling works even when the reader (a provider) has stopped
/// reading. A blocking write could only be ended by the reader.
/// </summary>
internal sealed class PipeWriter : IDisposable
{
    // How long one poll may block a thread before the cancellation token is looked at again.
    private const int PollMilliseconds = 100;

    private readonly SafeFileHandle _handle;

    public PipeWriter(SafeFileHandle handle)
    {
        _handle = handle;
        int fd = (int)handle.DangerousGetHandle();
        int flags = Libc.fcntl(fd, Libc.FGetfl, 0);
        if (flags < 0 || Libc.fcntl(fd, Libc.FSetfl, flags | Libc.ONonblock) < 0)
        {
            throw new IOException("fcntl(O_NONBLOCK) failed on the pipe", new Win32Exception(Marshal.GetLastPInvokeError()));
        }
    }

    /// <summary>Writes all of <paramref name="data"/>.</summary>
    /// <exception cref="IOException">The reader closed its end (EPIPE) or the write failed.</exception>
    public async Task WriteAsync(ReadOnlyMemory<byte> data, CancellationToken cancellationToken)
    {
        while (!data.IsEmpty)
        {
            cancellationToken.ThrowIfCancellationRequested();
            int written = TryWrite(data.Span);
            if (written > 0)
            {
                data = data[written..];
                continue;
            }
            await Task.Run(WaitWritable, cancellationToken);
        }
    }

    public void Dispose() => _handle.Dispose();

    private unsafe int TryWrite(ReadOnlySpan<byte> data)
    {
        fixed (byte* pointer = data)
        {
            nint result = Libc.write((int)_handle.DangerousGetHandle(), pointer, (nuint)data.Length);
            if (result >= 0)
            {
                return (int)result;
            }
            int errno = Marshal.GetLastPInvokeError();
            return errno switch
            {
                Libc.Eagain or Libc.Eintr => 0,
                Libc.Epipe => throw new IOException("the reader closed the pipe before the end of the stream"),
                _ => throw new IOException("write to the pipe failed", new Win32Exception(errno)),
            };
        }
    }

    private unsafe void WaitWritable()
    {
        var pollFd = new PollFd { Fd = (int)_handle.DangerousGetHandle(), Events = Libc.PollOut };
        // Any outcome (ready, timeout, EINTR, POLLERR when the reader is gone) sends the caller back to write(), which
        // reports the real state.
        _ = Libc.poll(&pollFd, 1, PollMilliseconds);
    }
}
