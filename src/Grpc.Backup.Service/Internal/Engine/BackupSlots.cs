namespace Grpc.Backup.Service.Internal.Engine;

/// <summary>
/// The host's guest-backup slots (OpenNebula's MAX_BACKUPS_HOST). Waiters are served by priority (lower first),
/// then in arrival order, so an urgent job overtakes a queued bulk job but never interrupts a running backup.
/// </summary>
internal sealed class BackupSlots(uint limit)
{
    private readonly Lock _lock = new();
    private readonly SortedSet<Waiter> _waiting = new(Comparer<Waiter>.Create((a, b) =>
        a.Priority != b.Priority ? a.Priority.CompareTo(b.Priority) : a.Sequence.CompareTo(b.Sequence)));
    private long _sequence;
    private uint _running;

    public uint Limit { get; } = limit;

    public uint Running
    {
        get
        {
            lock (_lock)
            {
                return _running;
            }
        }
    }

    public async Task<IDisposable> AcquireAsync(uint priority, CancellationToken cancellationToken)
    {
        Waiter waiter;
        lock (_lock)
        {
            if (_running < Limit && _waiting.Count == 0)
            {
                _running++;
                return new Lease(this);
            }
            waiter = new Waiter(priority, _sequence++, new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously));
            _waiting.Add(waiter);
        }
        await using (cancellationToken.Register(() =>
        {
            lock (_lock)
            {
                if (_waiting.Remove(waiter))
                {
                    waiter.Granted.TrySetCanceled(cancellationToken);
                }
            }
        }))
        {
            await waiter.Granted.Task;
        }
        return new Lease(this);
    }

    private void Release()
    {
        lock (_lock)
        {
            if (_waiting.Min is { } next)
            {
                // The slot passes straight to the next waiter: _running stays the same.
                _waiting.Remove(next);
                next.Granted.TrySetResult();
            }
            else
            {
                _running--;
            }
        }
    }

    private sealed record Waiter(uint Priority, long Sequence, TaskCompletionSource Granted);

    private sealed class Lease(BackupSlots slots) : IDisposable
    {
        private int _released;

        public void Dispose()
        {
            if (Interlocked.Exchange(ref _released, 1) == 0)
            {
                slots.Release();
            }
        }
    }
}
