using System.Buffers.Binary;
using System.Net.Sockets;
using Grpc.Backup.Transport.Internal;

namespace Grpc.Backup.Transport;

/// <summary>
/// A sideband connection that one process opens and another uses: the host connects to the provider's sideband and
/// reads HELLO, then hands the socket to the provider's container worker (fd 3), which sends one TRANSFER under the
/// token the host chose and gave to both sides. The worker runs as the container's root and could never connect
/// itself: the sideband only admits the host's and the provider's uids.
/// </summary>
public static class FdSidebandHandoff
{
    /// <summary>Connects to <paramref name="socketPath"/> and consumes the provider's HELLO, leaving no receiver on the socket.</summary>
    /// <exception cref="IOException">The connection closed before HELLO (the provider refused this uid) or the first packet was not a HELLO.</exception>
    public static async Task<Socket> ConnectAsync(string socketPath, CancellationToken cancellationToken)
    {
        ArgumentException.ThrowIfNullOrEmpty(socketPath);
        var socket = new Socket(AddressFamily.Unix, SocketType.Seqpacket, ProtocolType.Unspecified);
        try
        {
            await socket.ConnectAsync(new UnixDomainSocketEndPoint(socketPath), cancellationToken);
            byte[] packet = new byte[FdPacket.MaxLength + 1];
            int length = await socket.ReceiveAsync(packet, SocketFlags.None, cancellationToken);
            if (length != FdPacket.HeaderLength || !packet.AsSpan(0, 4).SequenceEqual(FdPacket.Magic)
                || packet[FdPacket.VersionOffset] != FdPacket.Version || packet[FdPacket.TypeOffset] != FdPacket.TypeHello
                || BinaryPrimitives.ReadUInt16LittleEndian(packet.AsSpan(FdPacket.CountOffset)) != 0)
            {
                throw new IOException(length == 0
                    ? $"Fd sideband {socketPath} closed before HELLO (is this uid allowed?)"
                    : $"Fd sideband {socketPath}: the first packet ({length} bytes) is not a HELLO");
            }
            return socket;
        }
        catch
        {
            socket.Dispose();
            throw;
        }
    }

    /// <summary>Sends one TRANSFER of <paramref name="fds"/> under <paramref name="token"/> on a handed-off connection.</summary>
    /// <exception cref="ArgumentException">No fds, more than 64, an invalid handle or kind, or an all-zero token.</exception>
    /// <exception cref="IOException">The connection is gone.</exception>
    public static Task SendAsync(Socket connection, FdToken token, IReadOnlyList<FdToSend> fds, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(connection);
        if (token == default)
        {
            throw new ArgumentException("A transfer token is never all zero.", nameof(token));
        }
        (FdKind[] kinds, System.Runtime.InteropServices.SafeHandle[] handles) = TransferContents.Check(fds);
        return PacketSender.SendAsync(connection, FdPacket.CreateTransfer(token, kinds), handles, cancellationToken);
    }
}
