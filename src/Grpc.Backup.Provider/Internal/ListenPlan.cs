using System.Net.Sockets;
using Grpc.Backup.Protocol;
using Grpc.Backup.Transport;

namespace Grpc.Backup.Provider.Internal;

/// <summary>
/// Where the provider listens, decided once at startup: the sockets systemd passed, or the ones it binds itself at
/// the configured endpoint. The gRPC socket goes to Kestrel, the seqpacket socket to the fd sideband.
/// </summary>
internal sealed class ListenPlan
{
    private readonly IReadOnlyList<UnixListeningSocket> _bound;

    private ListenPlan(Socket grpcSocket, Socket sidebandSocket, ProviderEndpoint endpoint, IReadOnlyList<UnixListeningSocket> bound)
    {
        GrpcSocket = grpcSocket;
        SidebandSocket = sidebandSocket;
        Endpoint = endpoint;
        _bound = bound;
    }

    public Socket GrpcSocket { get; }

    public Socket SidebandSocket { get; }

    public ProviderEndpoint Endpoint { get; }

    public static ListenPlan Create(ProviderOptions options)
    {
        SystemdSockets? activated = SystemdSockets.TakeFromEnvironment();
        if (activated is not null)
        {
            Socket grpc = activated.Stream[0];
            string path = (grpc.LocalEndPoint as UnixDomainSocketEndPoint)?.ToString()
                ?? throw new InvalidOperationException("the socket systemd passed has no path (abstract sockets are not supported)");
            var endpoint = ProviderEndpoint.Parse("unix:" + path);
            // A unit that passes only the gRPC socket (e.g. systemd-socket-activate, which passes one socket type)
            // still gets a sideband: the provider binds it beside the gRPC socket.
            if (activated.Seqpacket.Count == 1)
            {
                return new ListenPlan(grpc, activated.Seqpacket[0], endpoint, []);
            }
            var sideband = UnixListeningSocket.Bind(endpoint.SidebandPath, SocketType.Seqpacket, options.SocketMode);
            return new ListenPlan(grpc, sideband.Socket, endpoint, [sideband]);
        }
        ProviderEndpoint configured = options.Endpoint
            ?? throw new ProviderOptionsException("no endpoint: pass --listen unix:PATH, set BACKUP_PROVIDER_LISTEN, or use systemd socket activation");
        var grpcSocket = UnixListeningSocket.Bind(configured.SocketPath, SocketType.Stream, options.SocketMode);
        try
        {
            var sidebandSocket = UnixListeningSocket.Bind(configured.SidebandPath, SocketType.Seqpacket, options.SocketMode);
            return new ListenPlan(grpcSocket.Socket, sidebandSocket.Socket, configured, [grpcSocket, sidebandSocket]);
        }
        catch
        {
            grpcSocket.Socket.Dispose();
            grpcSocket.DeleteFileIfOurs();
            throw;
        }
    }

    /// <summary>
    /// Hands the gRPC socket's fd to Kestrel, which then owns it. The managed wrapper lets go without closing it.
    /// </summary>
    public ulong DetachGrpcHandle()
    {
        ulong handle = (ulong)GrpcSocket.SafeHandle.DangerousGetHandle();
        GrpcSocket.SafeHandle.SetHandleAsInvalid();
        return handle;
    }

    /// <summary>Removes the socket files this provider bound; systemd's belong to the socket unit.</summary>
    public void DeleteSocketFiles()
    {
        foreach (UnixListeningSocket socket in _bound)
        {
            socket.DeleteFileIfOurs();
        }
    }
}
