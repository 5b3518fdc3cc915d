using Grpc.Backup.Host;
using Grpc.Backup.Service.Internal.Configuration;
using Grpc.Backup.Transport;
using Microsoft.Extensions.DependencyInjection;
using OpenTelemetry;
using OpenTelemetry.Exporter;
using OpenTelemetry.Metrics;
using OpenTelemetry.Resources;
using OpenTelemetry.Trace;

namespace Grpc.Backup.Service.Internal.Telemetry;

/// <summary>
/// Wires the OpenTelemetry SDK to the service's and the host library's sources: Prometheus when host.conf names a
/// metrics-listen address, OTLP/HTTP (traces and metrics) when it names an otlp-endpoint, nothing otherwise.
/// </summary>
internal static class TelemetryRegistration
{
    public static void AddServiceTelemetry(this IServiceCollection services, HostSettings host)
    {
        if (host.MetricsListen is null && host.OtlpEndpoint is null)
        {
            return;
        }
        OpenTelemetryBuilder telemetry = services.AddOpenTelemetry()
            .ConfigureResource(resource => resource.AddService("grpc-backupd", serviceInstanceId: host.Node));
        telemetry.WithMetrics(metrics =>
        {
            // System.Runtime: the runtime's own meter (GC, thread pool, memory), built into .NET.
            metrics.AddMeter(ServiceInstruments.Name, ProviderTelemetry.MeterName, "System.Runtime", ProcessInstruments.Register());
            if (host.MetricsListen is not null)
            {
                metrics.AddPrometheusExporter(o => o.ScrapeEndpointPath = MetricsListener.ScrapePath);
            }
            if (host.OtlpEndpoint is { } otlp)
            {
                metrics.AddOtlpExporter(o => Otlp(o, otlp, "v1/metrics"));
            }
        });
        if (host.OtlpEndpoint is { } collector)
        {
            telemetry.WithTracing(tracing => tracing
                .AddSource(ServiceInstruments.Name, ProviderTelemetry.ActivitySourceName)
                .AddOtlpExporter(o => Otlp(o, collector, "v1/traces")));
        }
    }

    /// <summary>Set in code, the OTLP/HTTP endpoint is taken as the full URL: the signal's path is ours to append.</summary>
    private static void Otlp(OtlpExporterOptions options, Uri collector, string signalPath)
    {
        string root = collector.AbsoluteUri.EndsWith('/') ? collector.AbsoluteUri : collector.AbsoluteUri + "/";
        options.Endpoint = new Uri(new Uri(root), signalPath);
        options.Protocol = OtlpExportProtocol.HttpProtobuf;
    }
}
