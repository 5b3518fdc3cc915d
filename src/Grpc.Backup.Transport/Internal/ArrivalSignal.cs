namespace Grpc.Backup.Transport.Internal;

/// <summary>
/// Wakes the claims waiting for a token that has not arrived yet. Counted, so that the last
/// waiter to give up removes it and a signal never outlives its waiters.
/// </summary>
internal sealed class ArrivalSignal
{
    // Continuations must not run on the receive thread that completes the signal.
    private readonly TaskCompletionSource _arrived = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public int Waiters { get; set; }

    public Task Arrived => _arrived.Task;

    public void Set() => _arrived.TrySetResult();
}
