using Grpc.Backup.Qemu.Internal;

namespace Grpc.Backup.Qemu;

/// <summary>Teardown: per disk in reverse order (see <see cref="DiskTeardown"/>), then the NBD server; later the bitmaps.</summary>
public sealed partial class VmSnapshotAccess
{
    private async Task TeardownCoreAsync(bool backupSucceeded, CancellationToken cancellationToken)
    {
        // Off the caller's stack so that TeardownAsync returns (and releases its lock) at once.
        await Task.Yield();
        _log.Info(backupSucceeded ? "tearing down snapshot access after a successful backup" : "tearing down snapshot access after a failed backup");
        var errors = new List<Exception>();
        for (int i = _disks.Length - 1; i >= 0; i--)
        {
            await new DiskTeardown(_qmp, _disks[i], _log, errors).RunAsync(backupSucceeded, _options.ExportDeleteTimeout, cancellationToken);
        }

        if (_nbdServer is not null)
        {
            try
            {
                await _nbdServer.ReleaseAsync(_qmp, _log);
            }
            catch (Exception ex) when (SnapshotStep.IsExpected(ex))
            {
                SnapshotAccessException error = SnapshotStep.Wrap(null, "stop NBD server", ex);
                _log.Warning(error.Message);
                errors.Add(error);
            }
        }

        Exports = [];
        ThrowIfAny(errors, "teardown");
    }

    private async Task SettleCoreAsync(bool providerCommitted)
    {
        try
        {
            await _teardown!;
        }
        catch (SnapshotAccessException)
        {
            // Reported by TeardownAsync; whatever bitmap it could not settle is settled below as not committed.
            providerCommitted = false;
        }

        var errors = new List<Exception>();
        foreach (DiskSession disk in _disks.Reverse())
        {
            if (disk.Progress.ExportAdded)
            {
                // A stable bitmap an export still reads is busy; the next setup folds the background bitmap back.
                continue;
            }

            await new DiskTeardown(_qmp, disk, _log, errors).SettleBitmapsAsync(providerCommitted);
        }

        ThrowIfAny(errors, "settle bitmaps");
    }

    private static void ThrowIfAny(List<Exception> errors, string step)
    {
        if (errors.Count > 0)
        {
            throw new SnapshotAccessException(null, step, $"{errors.Count} step(s) failed, first: {errors[0].Message}", new AggregateException(errors));
        }
    }
}
