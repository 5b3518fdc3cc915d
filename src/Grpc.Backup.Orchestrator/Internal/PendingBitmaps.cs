namespace Grpc.Backup.Orchestrator.Internal;

/// <summary>
/// The dirty-bitmap settlements of one VM backup, held until BackupCleanup's answer is known: the incremental base may
/// move only after the provider committed (issue 15). Owns what the settlements need (the QMP connection), which is
/// closed only after them.
/// </summary>
internal sealed class PendingBitmaps : IAsyncDisposable
{
    private readonly List<Func<bool, Task>> _settlements = [];
    private readonly List<IAsyncDisposable> _owned = [];

    /// <summary>Registers a settlement: called once, with true only after BackupCleanup(success=true) returned OK.</summary>
    public void Add(Func<bool, Task> settle) => _settlements.Add(settle);

    /// <summary>Keeps <paramref name="resource"/> open until the settlements ran.</summary>
    public void Own(IAsyncDisposable resource) => _owned.Add(resource);

    /// <summary>Runs every settlement; never throws, since the backup's outcome is decided already (failures are logged).</summary>
    public async Task SettleAsync(bool providerCommitted, TaskLog log)
    {
        if (_settlements.Count == 0)
        {
            return;
        }
        foreach (Func<bool, Task> settle in _settlements)
        {
            try
            {
                await settle(providerCommitted);
            }
#pragma warning disable CA1031 // A bitmap that could not be moved errs toward a larger next backup; it must not fail this one.
            catch (Exception e)
#pragma warning restore CA1031
            {
                log.Warn($"settling the dirty bitmaps failed ({e.Message}); the next backup covers at least every write since the last committed one");
            }
        }
        _settlements.Clear();
        log.Info(providerCommitted ? "bitmaps committed: the next incremental starts at this backup's instant" : "bitmaps kept: the next incremental starts at the last committed backup");
    }

    /// <summary>Settles as not committed whatever is still pending, then closes what it owns.</summary>
    public async ValueTask DisposeAsync()
    {
        foreach (Func<bool, Task> settle in _settlements)
        {
            try
            {
                await settle(false);
            }
#pragma warning disable CA1031 // Disposal must not throw; a leftover background bitmap is folded back by the next setup.
            catch (Exception)
#pragma warning restore CA1031
            {
            }
        }
        _settlements.Clear();
        // Reverse order: snapshot access before the QMP connection it uses.
        foreach (IAsyncDisposable resource in Enumerable.Reverse(_owned))
        {
            try
            {
                await resource.DisposeAsync();
            }
#pragma warning disable CA1031 // One failure must not leave the next resource (the QMP connection: QEMU serves one client) open.
            catch (Exception)
#pragma warning restore CA1031
            {
            }
        }
        _owned.Clear();
    }
}
