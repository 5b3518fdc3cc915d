using System.Security.Cryptography;
using Grpc.Backup.Qemu.Internal;

namespace Grpc.Backup.Qemu;

/// <summary>
/// Point-in-time read access to a running VM's disks: per disk a fleecing image, a copy-before-write
/// filter switched into the guest's path, a <c>snapshot-access</c> node and an NBD export, plus the
/// dirty-bitmap bookkeeping for incremental backups.
/// </summary>
/// <remarks>
/// <para>
/// <b>Bitmaps.</b> Each device has a stable bitmap (<see cref="SnapshotAccessOptions.GetBitmapName"/>),
/// persistent on qcow2 and in memory on raw, that is the base of the next incremental backup. For an
/// incremental (Reuse) a background bitmap records writes while the stable one is frozen and exported; for a full
/// backup (New) the background bitmap records alone. Nothing moves the base before the provider committed: teardown
/// after a success leaves both as they are, and <see cref="SettleBitmapsAsync"/> (called once BackupCleanup's answer is
/// known) sets stable := background (New: creates the stable bitmap from it) after a commit, or stable |= background
/// (New: drops the background) otherwise. A failed backup settles at teardown. A process that dies anywhere in between
/// leaves the background bitmap, which the next setup or <see cref="RecoverAsync"/> folds back: over-reporting, never a
/// missed write.
/// </para>
/// <para>
/// <b>Order within the quiesce window, per disk:</b> (a) start the recording bitmap (background for
/// Reuse, the new stable bitmap for New), (b) add copy-before-write and switch the filter onto it, which
/// is the instant, (c) for Reuse freeze the stable bitmap. A write before (a) is in the stable bitmap and
/// in the snapshot; a write between (a) and (c) is in both bitmaps; a write after (c) is in the recording
/// bitmap only. So the exported bitmap covers every change up to the instant (perhaps a few clusters
/// more, which read fine), and the recording bitmap covers every change after it: no write is lost, even
/// where nothing stops the guest (qemu-storage-daemon has no run state). Freezing first, as some recipes
/// do, would leave the writes between the freeze and the switch out of this backup's bitmap although
/// they are in its data, so the restored image would mix two instants.
/// </para>
/// <para>
/// <b>Quiesce.</b> Copy-before-write can be told to protect only the stable bitmap's dirty clusters,
/// which keeps the fleecing image small, but it copies that bitmap when it is added, before the
/// instant. Only when <see cref="SnapshotAccessOptions.Quiesce"/> holds guest writes off across the window
/// is that copy equal to what is exported (should a write slip through anyway, its extent reads as an
/// error, i.e. a failed backup, never as wrong data). Without a quiesce every cluster is protected
/// instead, so a write racing the switch cannot make an exported extent unreadable. Disks are mutually
/// consistent only with a quiesce.
/// </para>
/// <para>
/// Anything that fails during setup is undone before <see cref="SetupAsync"/> throws. A snapshot that
/// breaks later (the fleecing store failed: <c>on-cbw-error=break-snapshot</c>) shows up as read errors
/// on the export, which the reader must treat as a failed backup.
/// </para>
/// </remarks>
public sealed partial class VmSnapshotAccess : IAsyncDisposable
{
    private readonly QmpClient _qmp;
    private readonly SnapshotAccessOptions _options;
    private readonly SnapshotLog _log;
    private readonly DiskSession[] _disks;
    private readonly Lock _gate = new();
    private NbdServerLease? _nbdServer;
    private Task? _teardown;
    private Task? _settle;
    private bool _ready;

    private VmSnapshotAccess(QmpClient qmp, DiskSession[] disks, SnapshotAccessOptions options)
    {
        _qmp = qmp;
        _disks = disks;
        _options = options;
        _log = new SnapshotLog(options.Log);
    }

    /// <summary>One export per disk, in the order the disks were given; empty after teardown.</summary>
    public IReadOnlyList<SnapshotExport> Exports { get; private set; } = [];

    /// <summary>
    /// Sets up point-in-time access to <paramref name="disks"/>. On failure everything done so far is
    /// undone (bitmaps keep covering every write since the last successful backup) and a
    /// <see cref="SnapshotAccessException"/> names the disk and step; problems during that cleanup are logged.
    /// </summary>
    public static async Task<VmSnapshotAccess> SetupAsync(QmpClient qmp, IReadOnlyList<SnapshotDisk> disks, SnapshotAccessOptions options, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(qmp);
        ArgumentNullException.ThrowIfNull(disks);
        ArgumentNullException.ThrowIfNull(options);
        Validate(disks, options);

        // Short: it goes into node names, which QEMU limits to 31 characters.
        string backupId = Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(4));
        var access = new VmSnapshotAccess(qmp, [.. disks.Select((disk, index) => new DiskSession(disk, index, backupId, options))], options);
        try
        {
            await access.InspectAsync(cancellationToken);
            await access.PrepareAsync(cancellationToken);
            await access.SwitchAsync(cancellationToken);
            await access.ExposeAsync(cancellationToken);
        }
        catch (Exception ex)
        {
            access._log.Warning($"setup failed, undoing it: {ex.Message}");
            try
            {
                await access.TeardownAsync(backupSucceeded: false, CancellationToken.None);
            }
            catch (SnapshotAccessException cleanup)
            {
                access._log.Warning($"cleanup after the failed setup was incomplete: {cleanup.Message}");
            }

            throw;
        }

        access._ready = true;
        return access;
    }

    /// <summary>
    /// Removes the exports and the fleecing graph and settles the bitmaps; safe to call more than once
    /// (later calls return the first call's task). Every step is attempted even if an earlier one fails;
    /// failures are collected into one <see cref="SnapshotAccessException"/>.
    /// </summary>
    /// <param name="backupSucceeded">
    /// True only if the provider stored every export completely: the bitmaps then wait for
    /// <see cref="SettleBitmapsAsync"/>. False settles them at once as a failure: the next incremental still covers
    /// everything since the last success.
    /// </param>
    /// <param name="cancellationToken">
    /// Only shortens the wait for a safe export deletion (a hard one follows); the rest always runs,
    /// because stopping half-way would leave the guest on the copy-before-write filter.
    /// </param>
    public Task TeardownAsync(bool backupSucceeded, CancellationToken cancellationToken = default)
    {
        lock (_gate)
        {
            return _teardown ??= TeardownCoreAsync(backupSucceeded && _ready, cancellationToken);
        }
    }

    /// <summary>
    /// After a successful <see cref="TeardownAsync"/>: moves the incremental base to this backup's instant if
    /// <paramref name="providerCommitted"/> (BackupCleanup(success=true) returned OK), else folds the background bitmap
    /// back as a failed backup does. Safe to call more than once (later calls return the first call's task); after a
    /// failed teardown the bitmaps are settled already and this does nothing.
    /// </summary>
    public Task SettleBitmapsAsync(bool providerCommitted)
    {
        lock (_gate)
        {
            if (_teardown is null)
            {
                throw new InvalidOperationException("Tear down first: the bitmaps can only be settled once the exports are gone.");
            }

            return _settle ??= SettleCoreAsync(providerCommitted);
        }
    }

    /// <summary>
    /// Tears down as a failed backup unless <see cref="TeardownAsync"/> ran, and settles the bitmaps as not committed
    /// unless <see cref="SettleBitmapsAsync"/> ran; never throws (failures are logged).
    /// </summary>
    public async ValueTask DisposeAsync()
    {
        try
        {
            await TeardownAsync(backupSucceeded: false, CancellationToken.None);
        }
        catch (SnapshotAccessException)
        {
            // Already logged step by step; disposal must not throw.
        }

        try
        {
            await SettleBitmapsAsync(providerCommitted: false);
        }
        catch (SnapshotAccessException)
        {
            // Logged; a background bitmap left behind is folded back by the next setup.
        }
    }

    private static void Validate(IReadOnlyList<SnapshotDisk> disks, SnapshotAccessOptions options)
    {
        ArgumentException.ThrowIfNullOrEmpty(options.FleecingDirectory, nameof(options));
        ArgumentException.ThrowIfNullOrEmpty(options.NbdSocketPath, nameof(options));
        ArgumentException.ThrowIfNullOrEmpty(options.StorageId, nameof(options));
        ArgumentException.ThrowIfNullOrEmpty(options.BitmapPrefix, nameof(options));
        if (options.CbwTimeout <= TimeSpan.Zero || options.CbwTimeout.TotalSeconds > uint.MaxValue)
        {
            throw new ArgumentOutOfRangeException(nameof(options), options.CbwTimeout, "CbwTimeout must be positive and fit QEMU's seconds field.");
        }

        if (disks.Count == 0)
        {
            throw new ArgumentException("At least one disk is needed.", nameof(disks));
        }

        foreach (SnapshotDisk disk in disks)
        {
            ArgumentNullException.ThrowIfNull(disk, nameof(disks));
            ArgumentException.ThrowIfNullOrEmpty(disk.DeviceName, nameof(disks));
            ArgumentException.ThrowIfNullOrEmpty(disk.FormatNode, nameof(disks));
            ArgumentException.ThrowIfNullOrEmpty(disk.FilterNode, nameof(disks));
            ArgumentException.ThrowIfNullOrEmpty(disk.ThrottleGroup, nameof(disks));
            // QEMU's limit for bitmap names (BDRV_BITMAP_MAX_NAME_SIZE), with room for the background suffix.
            if (options.GetBitmapName(disk.DeviceName).Length > 1020)
            {
                throw new ArgumentException($"The bitmap name for '{disk.DeviceName}' is too long.", nameof(disks));
            }
        }

        ThrowIfDuplicate(disks, d => d.DeviceName, "device name");
        ThrowIfDuplicate(disks, d => d.FormatNode, "format node");
        ThrowIfDuplicate(disks, d => d.FilterNode, "filter node");
    }

    private static void ThrowIfDuplicate(IReadOnlyList<SnapshotDisk> disks, Func<SnapshotDisk, string> key, string what)
    {
        string? duplicate = disks.GroupBy(key, StringComparer.Ordinal).FirstOrDefault(g => g.Count() > 1)?.Key;
        if (duplicate is not null)
        {
            throw new ArgumentException($"Two disks have the {what} '{duplicate}'.", nameof(disks));
        }
    }
}
