using System.Text.Json.Nodes;

namespace Grpc.Backup.Qemu.Internal;

/// <summary>
/// QEMU's single NBD server: started for this backup if it was not running, and then stopped again at
/// teardown. A server someone else started is left alone.
/// </summary>
internal sealed class NbdServerLease
{
    private readonly string _socketPath;

    private NbdServerLease(string socketPath, bool startedHere)
    {
        _socketPath = socketPath;
        StartedHere = startedHere;
    }

    public bool StartedHere { get; private set; }

    public static async Task<NbdServerLease> AcquireAsync(QmpClient qmp, string socketPath, SnapshotLog log, CancellationToken cancellationToken)
    {
        try
        {
            // 7.2 wants the legacy SocketAddressLegacy form here ("data" wrapper).
            await qmp.ExecuteAsync("nbd-server-start", new JsonObject
            {
                ["addr"] = new JsonObject { ["type"] = "unix", ["data"] = new JsonObject { ["path"] = socketPath } },
            }, cancellationToken);
            log.Info($"started QEMU's NBD server on {socketPath}");
            return new NbdServerLease(socketPath, startedHere: true);
        }
        catch (QmpCommandException ex) when (ex.Description.Contains("already running", StringComparison.Ordinal))
        {
            // There is no query for its address in 7.2; the caller vouches that it is socketPath.
            log.Info($"QEMU's NBD server is already running; exports are expected on {socketPath}");
            return new NbdServerLease(socketPath, startedHere: false);
        }
    }

    public async Task ReleaseAsync(QmpClient qmp, SnapshotLog log)
    {
        if (!StartedHere)
        {
            return;
        }

        try
        {
            await qmp.ExecuteAsync("nbd-server-stop", arguments: null, CancellationToken.None);
            StartedHere = false;
            log.Info("stopped QEMU's NBD server");
        }
        finally
        {
            // The path is private to this backup. QEMU removes it when it stops the server, but not when it
            // dies, and a stale socket file would only confuse whoever comes next.
            File.Delete(_socketPath);
        }
    }
}
