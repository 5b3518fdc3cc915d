using System.Text.Json.Nodes;
using Grpc.Backup.Protocol.V1;
using Grpc.Backup.Qemu;

namespace Grpc.Backup.Orchestrator.Internal;

/// <summary>
/// Puts a running VM into the state its backup mode asks for before snapshot access is set up, and back into the state
/// it had before once setup is done or has failed. <see cref="RestoreAsync"/> runs on every path and is idempotent, so
/// the guest's run state after the job is its state before it.
/// </summary>
internal sealed class BackupModeGuard(QmpClient qmp, VmBackupMode mode, TimeSpan shutdownTimeout, TaskLog log)
{
    private bool _paused;
    private bool _poweredDown;
    private string? _before;

    /// <summary>The guest is held (paused or shut down) by the mode or was not running anyway: no quiesce is needed.</summary>
    public bool Holds => _paused || _poweredDown || _before is "paused" or "shutdown" or "prelaunch" or "suspended";

    /// <summary>The consistency the mode itself gives, when it holds the guest.</summary>
    public Consistency HeldConsistency => _poweredDown || _before == "shutdown" ? Consistency.Stopped : Consistency.Crash;

    public async Task EnterAsync(CancellationToken cancellationToken)
    {
        _before = await QueryStatusAsync(cancellationToken);
        log.Info($"backup mode {mode}; guest is {_before ?? "without run state"}");
        if (mode == VmBackupMode.Snapshot || _before != "running")
        {
            if (mode != VmBackupMode.Snapshot && _before is null)
            {
                log.Warn($"the guest's QEMU has no run state (qemu-storage-daemon); mode {mode} runs as snapshot");
            }
            return;
        }
        if (mode == VmBackupMode.Suspend)
        {
            await qmp.ExecuteAsync("stop", cancellationToken: cancellationToken);
            _paused = true;
            log.Info("guest paused for the setup");
            return;
        }

        // Stop: a guest shutdown must pause QEMU, not end it, so the guest can be started again after setup.
        await qmp.ExecuteAsync("set-action", new JsonObject { ["shutdown"] = "pause" }, cancellationToken);
        try
        {
            await qmp.ExecuteAsync("system_powerdown", cancellationToken: cancellationToken);
            log.Info($"ACPI powerdown sent; waiting up to {shutdownTimeout.TotalSeconds:0} s for the guest to shut down");
            var deadline = DateTime.UtcNow + shutdownTimeout;
            while (await QueryStatusAsync(cancellationToken) != "shutdown")
            {
                if (DateTime.UtcNow > deadline)
                {
                    throw new BackupException($"the guest did not shut down within {shutdownTimeout.TotalSeconds:0} s of an ACPI powerdown; it keeps running and is not backed up");
                }
                await Task.Delay(200, cancellationToken);
            }
            _poweredDown = true;
            log.Info("guest shut down");
        }
        finally
        {
            if (!_poweredDown)
            {
                await qmp.ExecuteAsync("set-action", new JsonObject { ["shutdown"] = "poweroff" }, CancellationToken.None);
            }
        }
    }

    public async Task RestoreAsync()
    {
        if (_paused)
        {
            await qmp.ExecuteAsync("cont", cancellationToken: CancellationToken.None);
            _paused = false;
            log.Info("guest resumed");
        }
        if (_poweredDown)
        {
            // The guest shut itself down; a reset and cont start it again, as after a power-on.
            await qmp.ExecuteAsync("system_reset", cancellationToken: CancellationToken.None);
            await qmp.ExecuteAsync("cont", cancellationToken: CancellationToken.None);
            await qmp.ExecuteAsync("set-action", new JsonObject { ["shutdown"] = "poweroff" }, CancellationToken.None);
            _poweredDown = false;
            log.Info("guest started again");
        }
    }

    /// <summary>QMP's run state ("running", "paused", "shutdown", ...), or null when QEMU has none (qemu-storage-daemon).</summary>
    private async Task<string?> QueryStatusAsync(CancellationToken cancellationToken)
    {
        try
        {
            return (string?)(await qmp.ExecuteAsync("query-status", cancellationToken: cancellationToken))?["status"];
        }
        catch (QmpCommandException e) when (e.ErrorClass == QmpErrorClass.CommandNotFound)
        {
            return null;
        }
    }
}
