namespace Grpc.Backup.Host;

/// <summary>
/// The names under which every <see cref="ProviderConnection"/> reports its calls, for an application to subscribe
/// to (OpenTelemetry: <c>AddSource(ProviderTelemetry.ActivitySourceName)</c>, <c>AddMeter(ProviderTelemetry.MeterName)</c>).
/// The library itself depends only on System.Diagnostics; exporting is the application's choice.
/// </summary>
/// <remarks>
/// One client span per RPC, named <c>package.Service/Method</c> as the OpenTelemetry RPC conventions ask, with
/// <c>rpc.system</c>, <c>rpc.service</c>, <c>rpc.method</c>, <c>rpc.grpc.status_code</c> and <c>server.address</c>
/// (the provider's endpoint); a streaming call's span ends when its stream does. One histogram,
/// <c>rpc.client.call.duration</c> (seconds), with the same tags.
/// </remarks>
public static class ProviderTelemetry
{
    /// <summary>The <see cref="System.Diagnostics.ActivitySource"/> of provider RPC spans.</summary>
    public const string ActivitySourceName = "Grpc.Backup.Host";

    /// <summary>The <see cref="System.Diagnostics.Metrics.Meter"/> of provider RPC metrics.</summary>
    public const string MeterName = "Grpc.Backup.Host";
}
