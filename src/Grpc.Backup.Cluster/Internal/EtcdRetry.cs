using Grpc.Core;

namespace Grpc.Backup.Cluster.Internal;

/// <summary>
/// Retries one idempotent etcd call while the cluster is between states: a member that just died (the call started on
/// it fails with <see cref="StatusCode.Unavailable"/>, or the connection breaks under it), or a raft leader election
/// (etcd 3.4 answers "leader changed", "no leader" and "request timed out" as Unavailable, a proposal dropped while there
/// is no leader as Unknown). The next attempt may go to a survivor, after the election. Bounded: after
/// <see cref="Budget"/> the last error stands, so losing etcd altogether still fails the caller (fail safe).
/// </summary>
internal static class EtcdRetry
{
    /// <summary>How long one call keeps retrying a lost member or an election.</summary>
    public static readonly TimeSpan Budget = TimeSpan.FromSeconds(10);

    /// <summary>
    /// How long one attempt may go unanswered before it is given up and sent again. A request a member accepted just as
    /// the leader died is forwarded to the dead leader and lost; etcd answers it only after its request timeout (5 s plus
    /// two election timeouts: 10 s with the tests' 2.5 s), by which time the caller's lease may be gone. Sent again, it
    /// reaches the new leader.
    /// </summary>
    public static readonly TimeSpan Attempt = TimeSpan.FromSeconds(3);

    /// <param name="call">The idempotent call, given the attempt's token.</param>
    /// <param name="cancellationToken">The caller's token.</param>
    /// <param name="bounded">False for a call that blocks by design (an election's campaign): no <see cref="Attempt"/> bound.</param>
    public static async Task<T> RunAsync<T>(Func<CancellationToken, Task<T>> call, CancellationToken cancellationToken, bool bounded = true)
    {
        long deadline = Environment.TickCount64 + (long)Budget.TotalMilliseconds;
        int backoffMs = 50;
        while (true)
        {
            try
            {
                if (!bounded)
                {
                    return await call(cancellationToken).ConfigureAwait(false);
                }
                using var attempt = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
                attempt.CancelAfter(Attempt);
                return await call(attempt.Token).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested && Environment.TickCount64 + backoffMs < deadline)
            {
                // The attempt's bound passed (a call may report its cancellation this way rather than as Cancelled).
            }
            catch (RpcException e) when (IsTransient(e, cancellationToken) && Environment.TickCount64 + backoffMs < deadline)
            {
                await Task.Delay(backoffMs, cancellationToken).ConfigureAwait(false);
                backoffMs = Math.Min(backoffMs * 2, 1000);
            }
        }
    }

    public static Task RunAsync(Func<CancellationToken, Task> call, CancellationToken cancellationToken, bool bounded = true) =>
        RunAsync(async token =>
        {
            await call(token).ConfigureAwait(false);
            return true;
        }, cancellationToken, bounded);

    /// <summary>
    /// An error another attempt of the same idempotent call may not have: the member or the connection went, or raft had
    /// no leader. Not: a refusal that would repeat (auth, an invalid request, a compacted revision), nor a call the
    /// caller cancelled (a broken connection also reports Cancelled, then the caller's token is not cancelled).
    /// </summary>
    public static bool IsTransient(RpcException e, CancellationToken callerToken) => e.StatusCode switch
    {
        StatusCode.Unavailable or StatusCode.DeadlineExceeded or StatusCode.Unknown or StatusCode.Internal or StatusCode.Aborted
            or StatusCode.ResourceExhausted => true,
        StatusCode.Cancelled => !callerToken.IsCancellationRequested,
        _ => false,
    };
}
