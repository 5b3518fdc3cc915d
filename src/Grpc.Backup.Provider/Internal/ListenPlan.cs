using System.Net.Sockets;
using Grpc.Backup.Protocol;

namespace Grpc.Backup.Provider.Internal;

/// <summary>
/// Where the provider listens, decided once at startup: the sockets systemd passed, or the ones it binds itself at
/// the configured endpoint. The gRPC socket goes to Kestrel, the seqpacket socket to the fd sideband.
/// </summary>
internal sealed class ListenPlan
{
    private ListenPlan(Socket grpcSocket, Socket sidebandSocket, ProviderEndpoint endpoint, bool ownsSocketFiles)
    {
        GrpcSocket = grpcSocket;
        SidebandSocket = sidebandSocket;
        Endpoint = endpoint;
        OwnsSocketFiles = ownsSocketFiles;
    }

    public Socket GrpcSocket { get; }

    public Socket SidebandSocket { get; }

    public ProviderEndpoint Endpoint { get; }

    /// <summary>False for systemd-passed sockets: their files belong to the socket unit.</summary>
    public bool OwnsSocketFiles { get; }

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
            Socket sideband = activated.Seqpacket.Count == 1
                ? activated.Seqpacket[0]
                : UnixListeningSocket.Bind(endpoint.SidebandPath, SocketType.Seqpacket, options.SocketMode);
            return new ListenPlan(grpc, sideband, endpoint, ownsSocketFiles: activated.Seqpacket.Count == 0);
        }
        ProviderEndpoint configured = options.Endpoint
            ?? throw new InvalidOperationException("no endpoint: pass --listen unix:PATH, set BACKUP_PROVIDER_LISTEN, or use systemd socket activation");
        Socket grpcSocket = UnixListeningSocket.Bind(configured.SocketPath, SocketType.Stream, options.SocketMode);
        try
        {
            Socket sidebandSocket = UnixListeningSocket.Bind(configured.SidebandPath, SocketType.Seqpacket, options.SocketMode);
            return new ListenPlan(grpcSocket, sidebandSocket, configured, ownsSocketFiles: true);
        }
        catch
        {
            grpcSocket.Dispose();
            UnixListeningSocket.TryDelete(configured.SocketPath);
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

    public void DeleteSocketFiles()
    {
        if (OwnsSocketFiles)
        {
            UnixListeningSocket.TryDelete(Endpoint.SocketPath);
        }
        UnixListeningSocket.TryDelete(Endpoint.SidebandPath);
    }
}
