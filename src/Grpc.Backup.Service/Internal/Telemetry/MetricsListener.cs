using Grpc.Backup.Service.Internal.Api;
using Grpc.Backup.Service.Internal.Configuration;
using Grpc.Backup.Transport;
using Microsoft.AspNetCore.Connections.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Server.Kestrel.Core;

namespace Grpc.Backup.Service.Internal.Telemetry;

/// <summary>
/// The Prometheus listener: HTTP/1.1 on a loopback address or a 0660 Unix socket, next to (never instead of) the
/// root-only management socket. Its connections are marked, so that they reach <c>GET /metrics</c> and nothing else:
/// the management API stays behind the management socket's peer check.
/// </summary>
internal static class MetricsListener
{
    private const string Mark = "grpc-backupd.metrics-listener";

    public const string ScrapePath = "/metrics";

    /// <summary>Binds a Unix socket now (mode 0660 from the start, no window with a looser one); null for TCP.</summary>
    public static UnixListeningSocket? BindUnixSocket(MetricsListenAddress address) =>
        address.UnixPath is { } path
            ? UnixListeningSocket.Bind(path, System.Net.Sockets.SocketType.Stream,
                UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead | UnixFileMode.GroupWrite)
            : null;

    public static void Listen(KestrelServerOptions kestrel, MetricsListenAddress address, UnixListeningSocket? socket)
    {
        Action<ListenOptions> configure = listen =>
        {
            listen.Protocols = HttpProtocols.Http1;
            listen.Use(next => connection =>
            {
                connection.Items[Mark] = true;
                return next(connection);
            });
        };
        if (socket is not null)
        {
            KestrelUnixSocket.Listen(kestrel, socket, configure);
        }
        else
        {
            kestrel.Listen(address.Tcp!, configure);
        }
    }

    public static bool IsMetricsConnection(HttpContext context) =>
        context.Features.Get<IConnectionItemsFeature>()?.Items.ContainsKey(Mark) == true;

    public static bool IsScrape(HttpContext context) =>
        IsMetricsConnection(context) && HttpMethods.IsGet(context.Request.Method) && context.Request.Path == ScrapePath;
}
