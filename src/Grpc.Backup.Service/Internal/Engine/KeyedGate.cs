using System.Collections.Concurrent;

namespace Grpc.Backup.Service.Internal.Engine;

/// <summary>
/// Per-key semaphores: one per guest (a guest is never backed up twice at once) and one per storage (at most the
/// storage's max-concurrent backups into one repository, so a repository that locks itself never sees a contender).
/// </summary>
internal sealed class KeyedGate
{
    private readonly ConcurrentDictionary<string, SemaphoreSlim> _gates = new(StringComparer.Ordinal);

    public async Task<IDisposable> AcquireAsync(string key, uint capacity, CancellationToken cancellationToken)
    {
        SemaphoreSlim gate = _gates.GetOrAdd(key, _ => new SemaphoreSlim((int)capacity, (int)capacity));
        await gate.WaitAsync(cancellationToken);
        return new Lease(gate);
    }

    /// <summary>Whether the key is held right now (for status).</summary>
    public bool IsHeld(string key) => _gates.TryGetValue(key, out SemaphoreSlim? gate) && gate.CurrentCount == 0;

    private sealed class Lease(SemaphoreSlim gate) : IDisposable
    {
        private int _released;

        public void Dispose()
        {
            if (Interlocked.Exchange(ref _released, 1) == 0)
            {
                gate.Release();
            }
        }
    }
}
