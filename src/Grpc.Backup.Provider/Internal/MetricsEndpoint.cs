using System.Net;
using System.Net.Sockets;
using Grpc.Backup.Transport;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Connections.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Server.Kestrel.Core;

namespace Grpc.Backup.Provider.Internal;

/// <summary>
/// The provider's opt-in Prometheus endpoint (<c>--metrics-listen</c>): HTTP/1.1 on a loopback address or on a Unix
/// socket bound 0600 (the provider's user, and root), serving <c>GET /metrics</c> and nothing else. Its connections are
/// marked, so no gRPC call can arrive through it; the gRPC socket keeps its own peer checks.
/// </summary>
internal sealed class MetricsEndpoint
{
    public const string ScrapePath = "/metrics";

    private const string Mark = "grpc-backup-provider.metrics";

    private MetricsEndpoint(IPEndPoint? tcp, string? unixPath)
    {
        Tcp = tcp;
        UnixPath = unixPath;
    }

    public IPEndPoint? Tcp { get; }

    public string? UnixPath { get; }

    /// <summary><c>127.0.0.1:PORT</c>, <c>[::1]:PORT</c> or <c>unix:/absolute/path</c>; anything else is refused.</summary>
    /// <exception cref="ArgumentException">The address is malformed or not loopback.</exception>
    public static MetricsEndpoint Parse(string text)
    {
        if (text.StartsWith("unix:", StringComparison.Ordinal))
        {
            string path = text["unix:".Length..];
            return Path.IsPathFullyQualified(path)
                ? new MetricsEndpoint(null, path)
                : throw new ArgumentException($"--metrics-listen '{text}': the socket path must be absolute");
        }
        if (!IPEndPoint.TryParse(text, out IPEndPoint? endpoint) || endpoint.Port == 0 || !text.Contains(':', StringComparison.Ordinal))
        {
            throw new ArgumentException($"--metrics-listen '{text}' is not ADDRESS:PORT (e.g. 127.0.0.1:9465) or unix:/absolute/path");
        }
        return IPAddress.IsLoopback(endpoint.Address)
            ? new MetricsEndpoint(endpoint, null)
            : throw new ArgumentException($"--metrics-listen {endpoint.Address} is not a loopback address; the endpoint has no authentication");
    }

    /// <summary>Binds the Unix socket now, 0600 from the start (null for TCP, which Kestrel binds).</summary>
    public UnixListeningSocket? Bind() =>
        UnixPath is { } path ? UnixListeningSocket.Bind(path, SocketType.Stream, UnixFileMode.UserRead | UnixFileMode.UserWrite) : null;

    public void Listen(KestrelServerOptions kestrel, UnixListeningSocket? socket)
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
            ulong handle = (ulong)socket.Socket.SafeHandle.DangerousGetHandle();
            socket.Socket.SafeHandle.SetHandleAsInvalid();
            kestrel.ListenHandle(handle, configure);
        }
        else
        {
            kestrel.Listen(Tcp!, configure);
        }
    }

    /// <summary>Serves the scrape on the marked connections and ends every other request that arrives on them.</summary>
    public static void MapScrape(IApplicationBuilder app)
    {
        app.UseOpenTelemetryPrometheusScrapingEndpoint(context =>
            IsMetricsConnection(context) && HttpMethods.IsGet(context.Request.Method) && context.Request.Path == ScrapePath);
        app.Use((context, next) =>
        {
            if (IsMetricsConnection(context))
            {
                context.Response.StatusCode = StatusCodes.Status404NotFound;
                return Task.CompletedTask;
            }
            return next(context);
        });
    }

    public override string ToString() => Tcp?.ToString() ?? "unix:" + UnixPath;

    private static bool IsMetricsConnection(HttpContext context) =>
        context.Features.Get<IConnectionItemsFeature>()?.Items.ContainsKey(Mark) == true;
}
