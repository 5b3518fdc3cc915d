using Microsoft.Extensions.Diagnostics.HealthChecks;
using Microsoft.Extensions.Hosting;

namespace Grpc.Backup.Provider.Internal;

/// <summary>
/// grpc.health.v1 reports SERVING while the provider runs and NOT_SERVING once shutdown began, so a host watching
/// health stops sending work before the sockets go away.
/// </summary>
internal sealed class LifetimeHealthCheck(IHostApplicationLifetime lifetime) : IHealthCheck
{
    public Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default) =>
        Task.FromResult(lifetime.ApplicationStopping.IsCancellationRequested
            ? HealthCheckResult.Unhealthy("the provider is shutting down")
            : HealthCheckResult.Healthy());
}
