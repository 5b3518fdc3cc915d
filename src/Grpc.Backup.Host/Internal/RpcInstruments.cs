using System.Diagnostics;
using System.Diagnostics.Metrics;

namespace Grpc.Backup.Host.Internal;

/// <summary>The process-wide source and instruments behind <see cref="ProviderTelemetry"/>.</summary>
internal static class RpcInstruments
{
    public static readonly ActivitySource Source = new(ProviderTelemetry.ActivitySourceName);

    private static readonly Meter Meter = new(ProviderTelemetry.MeterName);

    /// <summary>Seconds from the call's start to its end (for a stream: its last message or its failure).</summary>
    public static readonly Histogram<double> CallDuration = Meter.CreateHistogram<double>("rpc.client.call.duration", "s",
        "Duration of gRPC calls to backup providers", advice: new InstrumentAdvice<double>
        {
            // Unary control calls take milliseconds; a BackupVm stream takes minutes to hours.
            HistogramBucketBoundaries = [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 10, 60, 300, 1800, 7200],
        });
}
