using System.Net;
using Grpc.Backup.Orchestrator.Inventory;

namespace Grpc.Backup.Service.Internal.Configuration;

/// <summary>
/// Where the Prometheus scrape endpoint listens: a loopback TCP address (<c>127.0.0.1:9464</c>, <c>[::1]:9464</c>)
/// or a Unix socket (<c>unix:/run/grpc-backup/metrics.sock</c>, created 0660). Never a routable address: the metrics
/// name guests and storages, and the endpoint has no authentication of its own.
/// </summary>
internal sealed record MetricsListenAddress(IPEndPoint? Tcp, string? UnixPath)
{
    public override string ToString() => Tcp?.ToString() ?? "unix:" + UnixPath;

    public static MetricsListenAddress Parse(ConfigLine line)
    {
        if (line.Value.StartsWith("unix:", StringComparison.Ordinal))
        {
            return new MetricsListenAddress(null, ConfigValues.AbsolutePath(line, line.Value["unix:".Length..]));
        }
        if (!IPEndPoint.TryParse(line.Value, out IPEndPoint? endpoint) || endpoint.Port == 0
            || !line.Value.Contains(':', StringComparison.Ordinal) || line.Value.EndsWith(']'))
        {
            throw line.Error($"metrics-listen '{line.Value}' is not ADDRESS:PORT (e.g. 127.0.0.1:9464) or unix:/absolute/path");
        }
        if (!IPAddress.IsLoopback(endpoint.Address))
        {
            throw line.Error($"metrics-listen {endpoint.Address} is not a loopback address; the endpoint has no authentication, "
                + "so it listens on 127.0.0.1, ::1 or a Unix socket only (put a proxy in front to expose it)");
        }
        return new MetricsListenAddress(endpoint, null);
    }
}
