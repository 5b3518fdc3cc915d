using Grpc.Core;

namespace Grpc.Backup.Cluster.Internal;

/// <summary>
/// Retries one idempotent etcd call while the member it reached is gone. The client balances over every endpoint, but a
/// call started on a member that just died fails with <see cref="StatusCode.Unavailable"/> (connection refused) before
/// the balancer has noticed; the next attempt goes to a survivor. Bounded: after <see cref="Budget"/> the last error
/// stands, so losing etcd altogether still fails the caller (fail safe).
/// </summary>
internal static class EtcdRetry
{
    /// <summary>How long one call keeps retrying a lost member.</summary>
    public static readonly TimeSpan Budget = TimeSpan.FromSeconds(10);

    public static async Task<T> RunAsync<T>(Func<CancellationToken, Task<T>> call, CancellationToken cancellationToken)
    {
        long deadline = Environment.TickCount64 + (long)Budget.TotalMilliseconds;
        int backoffMs = 50;
        while (true)
        {
            try
            {
                return await call(cancellationToken).ConfigureAwait(false);
            }
            catch (RpcException e) when (e.StatusCode == StatusCode.Unavailable && Environment.TickCount64 + backoffMs < deadline)
            {
                await Task.Delay(backoffMs, cancellationToken).ConfigureAwait(false);
                backoffMs = Math.Min(backoffMs * 2, 1000);
            }
        }
    }

    public static Task RunAsync(Func<CancellationToken, Task> call, CancellationToken cancellationToken) =>
        RunAsync(async token =>
        {
            await call(token).ConfigureAwait(false);
            return true;
        }, cancellationToken);
}
