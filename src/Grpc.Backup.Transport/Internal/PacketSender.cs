using System.Net.Sockets;
using System.Runtime.InteropServices;
using Grpc.Backup.Transport.Internal.Interop;

namespace Grpc.Backup.Transport.Internal;

/// <summary>
/// Sends one packet with its fds in one sendmsg. SOCK_SEQPACKET delivers each sendmsg as one
/// record, so concurrent senders cannot interleave and need no lock.
/// </summary>
internal static class PacketSender
{
    private static readonly TimeSpan _maxBackoff = TimeSpan.FromMilliseconds(50);

    public static async Task SendAsync(Socket socket, byte[] packet, IReadOnlyList<SafeHandle> fds, CancellationToken cancellationToken)
    {
        // The socket is full only when the peer stops reading; then back off without holding a
        // thread rather than block in sendmsg.
        TimeSpan backoff = TimeSpan.FromMilliseconds(1);
        while (true)
        {
            cancellationToken.ThrowIfCancellationRequested();
            int errno = TrySendOnce(socket.SafeHandle, packet, fds);
            if (errno == 0)
            {
                return;
            }

            if (errno != Libc.Eagain)
            {
                throw new IOException($"Sending on the fd sideband failed: {Marshal.GetPInvokeErrorMessage(errno)} (errno {errno}).");
            }

            await Task.Delay(backoff, cancellationToken);
            backoff = TimeSpan.FromTicks(Math.Min(backoff.Ticks * 2, _maxBackoff.Ticks));
        }
    }

    private static int TrySendOnce(SafeHandle socket, byte[] packet, IReadOnlyList<SafeHandle> fds)
    {
        // Hold a reference on every handle during the call: a handle closed concurrently could
        // otherwise have its fd number reused, and we would pass some unrelated file.
        int referenced = 0;
        bool socketAdded = false;
        try
        {
            socket.DangerousAddRef(ref socketAdded);
            Span<int> numbers = stackalloc int[fds.Count];
            for (; referenced < fds.Count; referenced++)
            {
                bool added = false;
                fds[referenced].DangerousAddRef(ref added);
                numbers[referenced] = (int)fds[referenced].DangerousGetHandle();
            }

            return SeqpacketIo.TrySend((int)socket.DangerousGetHandle(), packet, numbers);
        }
        finally
        {
            for (int i = 0; i < referenced; i++)
            {
                fds[i].DangerousRelease();
            }

            if (socketAdded)
            {
                socket.DangerousRelease();
            }
        }
    }
}
