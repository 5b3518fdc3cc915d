using System.Net.Sockets;
using System.Runtime.InteropServices;
using Grpc.Backup.Transport.Internal.Interop;
using Microsoft.Win32.SafeHandles;

namespace Grpc.Backup.Transport.Internal;

/// <summary>
/// Reads packets from one sideband connection on a dedicated thread, so that waiting for the
/// peer never holds a thread-pool thread. The thread keeps a reference on the socket handle
/// while it runs, so the fd number cannot be closed and reused under it; <see cref="Stop"/>
/// shuts the socket down, which wakes the thread with end-of-stream.
/// </summary>
internal sealed class PacketReceiveLoop
{
    private readonly Socket _socket;
    private readonly Func<ReceivedPacket, bool> _onPacket;
    private readonly TaskCompletionSource<string> _completion = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private volatile bool _stopping;
    private int _state; // 0 new, 1 started, 2 stopped before it started

    /// <param name="socket">The connected SOCK_SEQPACKET socket.</param>
    /// <param name="onPacket">Takes ownership of the packet's fds; returns false to end the connection.</param>
    public PacketReceiveLoop(Socket socket, Func<ReceivedPacket, bool> onPacket)
    {
        _socket = socket;
        _onPacket = onPacket;
    }

    /// <summary>Completes with the reason the loop ended; faults if a handler threw.</summary>
    public Task<string> Completion => _completion.Task;

    public void Start()
    {
        if (Interlocked.CompareExchange(ref _state, 1, 0) != 0)
        {
            return;
        }

        var thread = new Thread(Run, maxStackSize: 256 * 1024)
        {
            IsBackground = true,
            Name = "fd sideband receive",
        };

        // No ExecutionContext: the loop outlives whatever call started it.
        thread.UnsafeStart();
    }

    public void Stop()
    {
        _stopping = true;
        if (Interlocked.CompareExchange(ref _state, 2, 0) == 0)
        {
            _completion.TrySetResult("closed before receiving started");
        }

        try
        {
            _socket.Shutdown(SocketShutdown.Both);
        }
        catch (Exception e) when (e is SocketException or ObjectDisposedException)
        {
            // Already shut down or never connected: the loop ends by itself.
        }
    }

    private void Run()
    {
        SafeSocketHandle handle = _socket.SafeHandle;
        bool added = false;
        try
        {
            handle.DangerousAddRef(ref added);
            _completion.TrySetResult(ReceiveAll((int)handle.DangerousGetHandle()));
        }
        catch (Exception e)
        {
            _completion.TrySetException(e);
        }
        finally
        {
            if (added)
            {
                handle.DangerousRelease();
            }
        }
    }

    private string ReceiveAll(int fd)
    {
        var data = new byte[SeqpacketIo.ReceiveDataCapacity];
        var control = new byte[SeqpacketIo.ReceiveControlCapacity];
        var fds = new List<int>(FdPacket.MaxFds);
        while (true)
        {
            if (_stopping)
            {
                return "closed locally";
            }

            fds.Clear();
            int received = SeqpacketIo.TryReceive(fd, data, control, fds, out int flags, out ControlSummary summary);
            if (received == -Libc.Eagain)
            {
                int errno = SeqpacketIo.WaitReadable(fd);
                if (errno != 0)
                {
                    return $"poll failed: {Marshal.GetPInvokeErrorMessage(errno)}";
                }

                continue;
            }

            if (received < 0)
            {
                // A failed recvmsg returns no fds.
                return $"recvmsg failed: {Marshal.GetPInvokeErrorMessage(-received)}";
            }

            var packet = new ReceivedPacket(data.AsSpan(0, received).ToArray(), flags, Wrap(fds), summary);

            if (received == 0 || _stopping)
            {
                // End of stream (a zero-length record is not a packet of ours either).
                packet.CloseFds();
                return _stopping ? "closed locally" : "closed by the peer";
            }

            bool keepGoing;
            try
            {
                keepGoing = _onPacket(packet);
            }
            finally
            {
                // Whatever the handler did not take is closed, also when it threw.
                packet.CloseFds();
            }

            if (!keepGoing)
            {
                return "protocol error";
            }
        }
    }

    private static SafeFileHandle[] Wrap(List<int> fds)
    {
        if (fds.Count == 0)
        {
            return [];
        }

        var handles = new SafeFileHandle[fds.Count];
        for (int i = 0; i < handles.Length; i++)
        {
            handles[i] = new SafeFileHandle(fds[i], ownsHandle: true);
        }

        return handles;
    }
}
