using Grpc.Backup.Provider;
namespace Grpc.Backup.Providers.Borg.Internal;

/// <summary>
/// Serialises every borg command that locks the repository (backup, delete, prune, compact, check, restore
/// extraction) inside this provider, so borg's own lock only ever meets other clients, and a lock borg finds is never
/// one of ours. Backups wait; repository operations give up after a while so the host can retry later.
/// </summary>
internal sealed class RepositoryLock : IDisposable
{
    private readonly SemaphoreSlim _semaphore = new(1, 1);

    public async Task<IDisposable> AcquireAsync(CancellationToken cancellationToken)
    {
        await _semaphore.WaitAsync(cancellationToken);
        return new Releaser(_semaphore);
    }

    public void Dispose() => _semaphore.Dispose();

    public async Task<IDisposable> AcquireOrFailAsync(TimeSpan timeout, CancellationToken cancellationToken)
    {
        if (!await _semaphore.WaitAsync(timeout, cancellationToken))
        {
            throw ContractErrors.RepositoryLocked("the repository is busy with a backup or another repository operation of this provider");
        }
        return new Releaser(_semaphore);
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
