using System.Collections.Concurrent;
using Grpc.Backup.Protocol;
using Grpc.Backup.Protocol.V1;
using Grpc.Core;

namespace Grpc.Backup.Provider;

/// <summary>
/// One async lock per guest. Everything that reads a guest's chain and then changes it (choosing an incremental
/// base and writing the overlay, finishing a backup, deleting or pruning with rebases, editing a manifest) holds it,
/// so two operations on one guest never interleave and the chain stays consistent. Different guests never wait on
/// each other.
/// </summary>
public sealed class GuestLocks
{
    private readonly ConcurrentDictionary<string, SemaphoreSlim> _locks = new(StringComparer.Ordinal);

    public async Task<IDisposable> AcquireAsync(string guestId, CancellationToken cancellationToken)
    {
        SemaphoreSlim semaphore = _locks.GetOrAdd(guestId, _ => new SemaphoreSlim(1, 1));
        await semaphore.WaitAsync(cancellationToken);
        return new Releaser(semaphore);
    }

    /// <summary>
    /// For repository operations, which should not queue behind a long backup: waits at most
    /// <paramref name="timeout"/>, then fails with ABORTED REPOSITORY_LOCKED so the host retries later.
    /// </summary>
    public async Task<IDisposable> AcquireOrFailAsync(string guestId, TimeSpan timeout, CancellationToken cancellationToken)
    {
        SemaphoreSlim semaphore = _locks.GetOrAdd(guestId, _ => new SemaphoreSlim(1, 1));
        if (!await semaphore.WaitAsync(timeout, cancellationToken))
        {
            throw ProviderErrors.Create(ErrorReason.RepositoryLocked,
                $"guest {guestId} is busy with a backup or another repository operation");
        }
        return new Releaser(semaphore);
    }

    private sealed class Releaser(SemaphoreSlim semaphore) : IDisposable
    {
        private int _released;

        public void Dispose()
        {
            if (Interlocked.Exchange(ref _released, 1) == 0)
            {
                semaphore.Release();
            }
        }
    }
}
