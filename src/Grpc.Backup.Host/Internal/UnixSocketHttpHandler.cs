using System.Net.Sockets;

namespace Grpc.Backup.Host.Internal;

/// <summary>An HTTP/2 handler that connects to a Unix socket instead of resolving a host name.</summary>
internal static class UnixSocketHttpHandler
{
    public static SocketsHttpHandler Create(string socketPath) => new()
    {
        ConnectCallback = async (_, cancellationToken) =>
        {
            var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
            try
            {
                await socket.ConnectAsync(new UnixDomainSocketEndPoint(socketPath), cancellationToken);
                return new NetworkStream(socket, ownsSocket: true);
            }
            catch
            {
                socket.Dispose();
                throw;
            }
        },
        // More than 100 concurrent calls (e.g. many disks' progress streams) must not queue behind one connection.
        EnableMultipleHttp2Connections = true,
        // A provider killed mid-backup is noticed by the transport, not only when the next message is due.
        KeepAlivePingDelay = TimeSpan.FromSeconds(20),
        KeepAlivePingTimeout = TimeSpan.FromSeconds(10),
        KeepAlivePingPolicy = HttpKeepAlivePingPolicy.WithActiveRequests,
        PooledConnectionIdleTimeout = Timeout.InfiniteTimeSpan,
    };
}
