namespace Grpc.Backup.Qemu;

/// <summary>Settings for <see cref="VmSnapshotAccess.SetupAsync"/>.</summary>
public sealed class SnapshotAccessOptions
{
    /// <summary>
    /// Where fleecing images go. The filesystem must support sparse files and punch-hole, or TRIM from
    /// the provider cannot give space back. The images hold guest data, so the directory should be private.
    /// </summary>
    public required string FleecingDirectory { get; init; }

    /// <summary>
    /// Unix socket for QEMU's NBD server. The server is started here if QEMU runs none, and stopped at
    /// teardown only then. If QEMU already runs one, it is assumed to listen on this path (QEMU has a single
    /// NBD server and 7.2 cannot report its address).
    /// </summary>
    public required string NbdSocketPath { get; init; }

    /// <summary>
    /// The provider's storage id; part of the stable bitmap name so that two providers backing up the
    /// same VM never use each other's bitmap as a base.
    /// </summary>
    public required string StorageId { get; init; }

    /// <summary>How long a guest write may wait for its copy-before-write before the snapshot breaks.</summary>
    public TimeSpan CbwTimeout { get; init; } = TimeSpan.FromSeconds(45);

    /// <summary>Prefix of the stable bitmap names, see <see cref="GetBitmapName"/>.</summary>
    public string BitmapPrefix { get; init; } = "grpc-backup";

    /// <summary>
    /// Called once around the bitmap changes and the copy-before-write switch of all disks; disposing the
    /// result ends the quiesce. Typically QMP <c>stop</c>/<c>cont</c> or a guest-agent freeze/thaw. Null
    /// means no quiesce: each disk is still point-in-time and no write is lost from the bitmaps, but disks
    /// are not consistent with each other, and incremental exports then let copy-before-write protect every
    /// cluster (see remarks on <see cref="VmSnapshotAccess"/>).
    /// </summary>
    public Func<CancellationToken, Task<IAsyncDisposable?>>? Quiesce { get; init; }

    /// <summary>
    /// Receives progress and warnings. A delegate rather than <c>ILogger</c> because this project does not
    /// reference Microsoft.Extensions.Logging; adapt with <c>(level, message) =&gt; logger.Log(...)</c>.
    /// </summary>
    public Action<SnapshotAccessLogLevel, string>? Log { get; init; }

    /// <summary>
    /// Reads of the exports are limited to this many bytes per second by a QEMU throttle group on a filter node over
    /// each snapshot-access node (per disk, disks are read one after the other); 0 means unlimited.
    /// </summary>
    /// <remarks>
    /// Not for backups whose data must be exact: with QEMU 7.2 and a guest writing during a long throttled read, some
    /// reads through this node returned data written after the instant (a MiB or two of a 32 MiB disk in about half
    /// of the runs of SlowFirstDiskTests; none without the node). The orchestrator limits bandwidth in its NBD guards.
    /// </remarks>
    public ulong BandwidthLimit { get; init; }

    /// <summary>How long teardown waits for <c>BLOCK_EXPORT_DELETED</c> before it forces the export closed.</summary>
    public TimeSpan ExportDeleteTimeout { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>The stable bitmap name of a device: <c>{BitmapPrefix}-{StorageId}-{deviceName}</c>.</summary>
    public string GetBitmapName(string deviceName) => $"{BitmapPrefix}-{StorageId}-{deviceName}";
}
