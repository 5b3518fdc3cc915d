using System.Net.Sockets;
using Grpc.Backup.Host;
using Grpc.Backup.Orchestrator;
using Grpc.Backup.Protocol.V1;
using Grpc.Backup.Qemu;
using Grpc.Backup.Service.Internal.Catalog;
using Grpc.Backup.Service.Internal.Configuration;
using Grpc.Core;
using Microsoft.Extensions.Logging;

namespace Grpc.Backup.Service.Internal.Recovery;

/// <summary>
/// Runs once at start-up, before any job: every journal entry is a guest backup that a crash of this service
/// interrupted. For each, in teardown order: QEMU's leftovers (exports, snapshot-access, copy-before-write and
/// fleecing nodes, background bitmaps folded back, the NBD server) through QMP; the fleecing images; a guest left
/// paused or frozen is resumed or thawed; qemu-nbd processes of a stopped guest's export are killed; then the
/// provider hears BackupCleanup(success=false) for the half-written backup and JobCleanup for its job. Catalog rows
/// still "running" become failed with the reason. The guest side runs under the guest's lock (<see cref="GuestLock"/>):
/// a guest that a live process is backing up is left alone.
/// </summary>
internal sealed partial class CrashRecovery(CatalogDatabase catalog, ServiceConfiguration config, string lockDirectory, ILoggerFactory loggerFactory)
{
    private readonly ILogger _logger = loggerFactory.CreateLogger<CrashRecovery>();

    public async Task<int> RecoverAsync(CancellationToken cancellationToken)
    {
        IReadOnlyList<JournalEntry> entries = catalog.JournalEntries();
        // The guest side once per guest (leftovers are recognised by name, whichever backup made them; a second pass
        // would mistake the folded bitmap for one the crash started), then each backup's provider.
        foreach (var guest in entries.GroupBy(e => e.GuestId, StringComparer.Ordinal))
        {
            JournalEntry newest = guest.MaxBy(e => e.Started)!;
            foreach (JournalEntry entry in guest)
            {
                LogFound(_logger, entry.GuestId, entry.BackupId, entry.Started);
            }
            // Leftovers are recognised by name, so a live backup's nodes look the same: the guest lock tells them apart.
            // Held by a live process (the CLI's direct mode), the graph is that backup's (its setup refuses another's
            // leftovers), and the dead service's own leftovers can only be bitmaps, which the next setup folds back.
            using (GuestLock? guestLock = GuestLock.TryAcquire(lockDirectory, guest.Key, out int holder))
            {
                if (guestLock is null)
                {
                    LogGuestBusy(_logger, guest.Key, holder);
                }
                else
                {
                    await RecoverGuestAsync(newest, cancellationToken);
                }
            }
            foreach (JournalEntry entry in guest)
            {
                await CleanUpProviderAsync(entry, cancellationToken);
                catalog.JournalEnd(entry.BackupId);
            }
        }
        catalog.MarkInterrupted(DateTime.UtcNow);
        return entries.Count;
    }

    private async Task RecoverGuestAsync(JournalEntry entry, CancellationToken cancellationToken)
    {
        if (entry.Container)
        {
            await RecoverContainerAsync(entry, cancellationToken);
            return;
        }
        KillOrphanedExports(entry);
        var disks = entry.Disks.Select(d => new SnapshotDisk(d.DeviceName, d.FormatNode, d.FilterNode, d.ThrottleGroup, d.Qcow2, BitmapRequest.None)).ToList();
        var options = new SnapshotAccessOptions
        {
            FleecingDirectory = entry.FleecingDirectory,
            NbdSocketPath = SnapshotSocket(entry),
            StorageId = entry.Storage,
            Log = (_, message) => LogStep(_logger, entry.GuestId, message),
        };
        QmpClient qmp;
        try
        {
            qmp = await QmpClient.ConnectAsync(entry.QmpSocket, cancellationToken);
        }
        catch (Exception e) when (e is SocketException or IOException)
        {
            // The guest is not running: whatever QEMU held died with it. Only files can be left.
            LogGuestDown(_logger, entry.GuestId, e.Message);
            foreach (string file in Directory.Exists(entry.FleecingDirectory) ? Directory.EnumerateFiles(entry.FleecingDirectory, "fleece-*.raw") : [])
            {
                File.Delete(file);
            }
            File.Delete(SnapshotSocket(entry));
            return;
        }
        await using (qmp)
        {
            foreach (string step in await VmSnapshotAccess.RecoverAsync(qmp, disks, options, SnapshotSocket(entry), cancellationToken))
            {
                LogStep(_logger, entry.GuestId, step);
            }
            await ResumeIfPausedAsync(qmp, entry, cancellationToken);
        }
        await ThawIfFrozenAsync(entry, cancellationToken);
    }

    /// <summary>
    /// A container's backup runs its tar and rsync in a user-namespace holder that reads the service's stdin, so it
    /// ends with the service, and the views' mounts live in that namespace; what outlives it is a frozen cgroup
    /// (suspend mode) and the suspend copy on disk.
    /// </summary>
    private async Task RecoverContainerAsync(JournalEntry entry, CancellationToken cancellationToken)
    {
        if (entry.Cgroup is { } cgroup && File.Exists(Path.Combine(cgroup, "cgroup.freeze"))
            && (await File.ReadAllTextAsync(Path.Combine(cgroup, "cgroup.freeze"), cancellationToken)).Trim() == "1")
        {
            await new Containers.CgroupFreezer(cgroup).ThawAsync(cancellationToken);
            LogStep(_logger, entry.GuestId, $"thawed cgroup {cgroup}, frozen by the interrupted backup");
        }
        if (entry.TemporaryDirectory is { } temporary && Directory.Exists(temporary))
        {
            Directory.Delete(temporary, recursive: true);
            LogStep(_logger, entry.GuestId, $"removed the interrupted backup's work directory {temporary}");
        }
    }

    private async Task ResumeIfPausedAsync(QmpClient qmp, JournalEntry entry, CancellationToken cancellationToken)
    {
        try
        {
            var status = await qmp.ExecuteAsync("query-status", arguments: null, cancellationToken);
            if ((string?)status?["status"] == "paused")
            {
                // The quiescer stops a guest without an agent for the instant only; one paused at a crash was ours.
                await qmp.ExecuteAsync("cont", arguments: null, cancellationToken);
                LogStep(_logger, entry.GuestId, "resumed the guest, which the interrupted backup had paused");
            }
        }
        catch (QmpCommandException)
        {
            // qemu-storage-daemon has no run state.
        }
    }

    private async Task ThawIfFrozenAsync(JournalEntry entry, CancellationToken cancellationToken)
    {
        if (entry.AgentSocket is null || !File.Exists(entry.AgentSocket))
        {
            return;
        }
        try
        {
            await using var agent = await GuestAgentClient.ConnectAsync(entry.AgentSocket, cancellationToken);
            using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            timeout.CancelAfter(TimeSpan.FromSeconds(10));
            if (await agent.GetFreezeStatusAsync(timeout.Token) == "frozen")
            {
                await agent.ThawAsync(timeout.Token);
                LogStep(_logger, entry.GuestId, "thawed the guest's filesystems, frozen by the interrupted backup");
            }
        }
        catch (Exception e) when (e is SocketException or IOException or OperationCanceledException or InvalidOperationException)
        {
            LogStep(_logger, entry.GuestId, $"guest agent not usable ({e.Message}); nothing to thaw");
        }
    }

    /// <summary>
    /// Children of the dead service that outlive it: qemu-nbd exporting a stopped guest's images, and nbdfuse serving
    /// the FILE_HANDLE mechanism's snapshot files (whose FUSE mounts are then detached and their directory removed).
    /// </summary>
    private void KillOrphanedExports(JournalEntry entry)
    {
        KillOrphans(entry, "qemu-nbd", Path.Combine(entry.RuntimeDirectory, $"off-{entry.BackupId[..8]}-"));
        string files = Path.Combine(entry.RuntimeDirectory, $"files-{entry.BackupId[..8]}");
        KillOrphans(entry, "nbdfuse", files + "/");
        if (Directory.Exists(files))
        {
            foreach (string mount in File.ReadAllLines("/proc/self/mounts").Select(l => l.Split(' ')[1]).Where(m => m.StartsWith(files + "/", StringComparison.Ordinal)))
            {
                using var umount = System.Diagnostics.Process.Start("umount", ["-l", mount]);
                umount.WaitForExit();
                LogStep(_logger, entry.GuestId, $"detached FUSE mount {mount}");
            }
            Directory.Delete(files, recursive: true);
        }
    }

    private void KillOrphans(JournalEntry entry, string program, string marker)
    {
        foreach (string dir in Directory.EnumerateDirectories("/proc"))
        {
            if (!int.TryParse(Path.GetFileName(dir), out int pid))
            {
                continue;
            }
            try
            {
                string[] argv = File.ReadAllText(Path.Combine(dir, "cmdline")).Split('\0');
                if (argv.Length > 0 && Path.GetFileName(argv[0]) == program && argv.Any(a => a.StartsWith(marker, StringComparison.Ordinal)))
                {
                    using var process = System.Diagnostics.Process.GetProcessById(pid);
                    process.Kill();
                    LogStep(_logger, entry.GuestId, $"killed orphaned {program} {pid}");
                }
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException or ArgumentException or InvalidOperationException)
            {
                // The process ended meanwhile.
            }
        }
    }

    private async Task CleanUpProviderAsync(JournalEntry entry, CancellationToken cancellationToken)
    {
        if (!config.Storages.TryGetValue(entry.Storage, out StorageConfig? storage))
        {
            LogProviderCleanupFailed(_logger, entry.BackupId, $"storage {entry.Storage} is no longer configured");
            return;
        }
        try
        {
            await using var provider = await ProviderConnection.ConnectAsync(storage.Endpoint, loggerFactory: loggerFactory, cancellationToken: cancellationToken);
            const string Error = "interrupted: the host backup service stopped during the backup";
            await provider.Backup.BackupCleanupAsync(new BackupCleanupRequest { JobId = entry.JobId, BackupId = entry.BackupId, Success = false, Error = Error },
                cancellationToken: cancellationToken);
            await provider.Backup.JobCleanupAsync(new JobCleanupRequest { JobId = entry.JobId, Success = false, Error = Error }, cancellationToken: cancellationToken);
            LogStep(_logger, entry.GuestId, $"provider {storage.Name}: BackupCleanup(failure) for {entry.BackupId} and JobCleanup for {entry.JobId}");
        }
        catch (Exception e) when (e is RpcException or ProviderHandshakeException)
        {
            // The provider lists only backups whose cleanup succeeded, so one it never hears about stays invisible;
            // the guest side is settled, and repeating it at the next start would discard a newer bitmap.
            LogProviderCleanupFailed(_logger, entry.BackupId, e.Message);
        }
    }

    private static string SnapshotSocket(JournalEntry entry) => Path.Combine(entry.RuntimeDirectory, $"snap-{entry.BackupId[..8]}.sock");

    [LoggerMessage(Level = LogLevel.Warning, Message = "Recovering the backup of guest {GuestId} ({BackupId}, started {Started:o}) that a crash interrupted")]
    private static partial void LogFound(ILogger logger, string guestId, string backupId, DateTime started);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Recovery of guest {GuestId}: {Step}")]
    private static partial void LogStep(ILogger logger, string guestId, string step);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Recovery of guest {GuestId}: process {Holder} holds its lock and is backing it up; its nodes are left alone")]
    private static partial void LogGuestBusy(ILogger logger, string guestId, int holder);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Recovery of guest {GuestId}: not running ({Reason}); removing files only")]
    private static partial void LogGuestDown(ILogger logger, string guestId, string reason);

    [LoggerMessage(Level = LogLevel.Error, Message = "Recovery of {BackupId}: the provider could not be told: {Reason}")]
    private static partial void LogProviderCleanupFailed(ILogger logger, string backupId, string reason);
}
