using System.Net.Sockets;
using System.Runtime.InteropServices;
using Grpc.Backup.Transport;
using Grpc.Backup.Transport.Internal;

namespace Grpc.Backup.Conformance.Internal;

/// <summary>
/// A sideband connection that bypasses the host's <see cref="FdChannel"/>: it reads HELLO itself and sends exactly the
/// bytes and fds a check wants (a reused token, more fds than the header counts, a bad magic), with the transport's
/// own sendmsg helper.
/// </summary>
internal sealed class RawSideband : IDisposable
{
    private readonly Socket _socket;

    private RawSideband(Socket socket) => _socket = socket;

    public static async Task<RawSideband> ConnectAsync(string path, CancellationToken cancellationToken)
    {
        var socket = new Socket(AddressFamily.Unix, SocketType.Seqpacket, ProtocolType.Unspecified);
        try
        {
            await socket.ConnectAsync(new UnixDomainSocketEndPoint(path), cancellationToken);
            byte[] hello = new byte[FdPacket.MaxLength + 1];
            using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            timeout.CancelAfter(TimeSpan.FromSeconds(5));
            int received = await socket.ReceiveAsync(hello, SocketFlags.None, timeout.Token);
            if (received != FdPacket.HeaderLength || !hello.AsSpan(0, 4).SequenceEqual(FdPacket.Magic) || hello[FdPacket.TypeOffset] != FdPacket.TypeHello)
            {
                throw new CheckFailedException($"the provider's first sideband packet is not a HELLO ({received} bytes)");
            }
            return new RawSideband(socket);
        }
        catch
        {
            socket.Dispose();
            throw;
        }
    }

    /// <summary>Sends a TRANSFER whose header declares <paramref name="kinds"/> but carries <paramref name="fds"/>.</summary>
    public void SendTransfer(FdToken token, FdKind[] kinds, params SafeHandle[] fds) => Send(FdPacket.CreateTransfer(token, kinds), fds);

    public void Send(byte[] packet, params SafeHandle[] fds)
    {
        int[] numbers = [.. fds.Select(f => (int)f.DangerousGetHandle())];
        int errno = SeqpacketIo.TrySend((int)_socket.Handle, packet, numbers);
        if (errno != 0)
        {
            throw new IOException($"sendmsg on the sideband failed: {Marshal.GetPInvokeErrorMessage(errno)}");
        }
    }

    /// <summary>True when the provider closes the connection within <paramref name="wait"/>.</summary>
    public async Task<bool> ClosedByPeerAsync(TimeSpan wait, CancellationToken cancellationToken)
    {
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        timeout.CancelAfter(wait);
        byte[] buffer = new byte[FdPacket.MaxLength + 1];
        try
        {
            while (true)
            {
                if (await _socket.ReceiveAsync(buffer, SocketFlags.None, timeout.Token) == 0)
                {
                    return true;
                }
            }
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            return false;
        }
        catch (SocketException)
        {
            return true;
        }
    }

    public void Dispose() => _socket.Dispose();
}
