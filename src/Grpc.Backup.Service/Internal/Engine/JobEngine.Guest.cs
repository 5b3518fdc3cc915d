using System.Diagnostics;
using Grpc.Backup.Containers;
using Grpc.Backup.Host;
using Grpc.Backup.Management.V1;
using Grpc.Backup.Orchestrator;
using Grpc.Backup.Protocol.V1;
using Grpc.Backup.Service.Internal.Catalog;
using Grpc.Backup.Service.Internal.Configuration;
using Grpc.Backup.Service.Internal.Tasks;
using Grpc.Backup.Service.Internal.Telemetry;
using Grpc.Core;
using Microsoft.Extensions.Logging;

namespace Grpc.Backup.Service.Internal.Engine;

/// <summary>One guest within a job.</summary>
internal sealed partial class JobEngine
{
    private async Task<bool> BackupGuestAsync(ServiceTask task, BackupPlan plan, ProviderConnection provider, HookRunner hooks, string jobId,
        ConfiguredGuest guest)
    {
        CancellationToken cancellationToken = task.Cancellation;
        var result = new GuestResult { GuestId = guest.Id, State = TaskState.Queued };
        task.SetGuest(result.Clone());
        string backupId = Guid.NewGuid().ToString();
        using Activity? span = ServiceInstruments.Source.StartActivity("backup guest", ActivityKind.Internal);
        span?.SetTag("grpc_backup.guest", guest.Id);
        span?.SetTag("grpc_backup.guest_type", guest.TypeName);
        span?.SetTag("grpc_backup.backup_id", backupId);
        string logFile = Path.Combine(paths.LogDirectory, $"{task.Id}-{guest.Id}.log");
        using var guestLog = new GuestLogFile(task, guest.Id, logFile);
        var held = new Stack<IDisposable>();
        Grpc.Backup.Cluster.ClusterSlot? clusterSlot = null;
        JobSession? guestJob = null;
        DateTime started = DateTime.UtcNow;
        bool success = false;
        try
        {
            // Always in this order (guest, storage, host), so two runs can never wait on each other in a cycle.
            held.Push(await _guestLocks.AcquireAsync("guest:" + guest.Id, 1, cancellationToken));
            held.Push(await _storageSlots.AcquireAsync("storage:" + plan.Storage.Name, plan.Storage.MaxConcurrent, cancellationToken));
            held.Push(await Slots.AcquireAsync(plan.Priority, cancellationToken));
            if (cluster is not null)
            {
                (clusterSlot, guestJob) = await StartClusterJobAsync(task, plan, provider, guest, cancellationToken);
            }
            started = DateTime.UtcNow;
            result.State = TaskState.Running;
            task.SetGuest(result.Clone());
            catalog.GuestStarted(task.Id, guest.Id, backupId, started);
            PublishRun(task.Id);
            await hooks.RunAsync(task, "backup-start", jobId, guest.Id, guest.TypeName);

            GuestOutcome backup = await RunJournaledAsync(task, plan, provider, guestJob?.JobId ?? jobId, backupId, guest, cancellationToken);
            result.ArchiveName = backup.Archive;
            result.Consistency = backup.Consistency;
            result.BitmapModes.AddRange(backup.BitmapModes);
            result.BytesRead = backup.BytesRead;
            result.ArchiveSizeBytes = backup.ArchiveSize;
            if (backup.Checksums is { Count: > 0 } checksums)
            {
                catalog.RecordChecksums(plan.Storage.Name, backup.Archive, checksums);
            }
            if (backup.Digests is { Count: > 0 } digests)
            {
                catalog.RecordDigests(plan.Storage.Name, backup.Archive, digests);
            }
            if (backup.Manifest is { } manifest)
            {
                string manifestPath = paths.ManifestPath(plan.Storage.Name, backup.Archive);
                await manifest.SaveAsync(manifestPath, CancellationToken.None);
                catalog.RecordContainerManifest(plan.Storage.Name, backup.Archive, manifestPath);
            }
            task.Log("INFO", guest.Id, $"stored {backup.Archive} ({result.Consistency}; {string.Join(", ", result.BitmapModes)}; read {result.BytesRead} bytes, archive {result.ArchiveSizeBytes} bytes)");

            await AfterBackupAsync(task, plan, provider, guest, backup.Archive);
            await hooks.RunAsync(task, "backup-end", jobId, guest.Id, guest.TypeName, backup.Archive);
            result.State = TaskState.Succeeded;
            success = true;
        }
        catch (Exception e)
        {
            result.Error = Describe(e);
            result.State = cancellationToken.IsCancellationRequested ? TaskState.Cancelled : TaskState.Failed;
            task.Log("ERROR", guest.Id, $"backup of {guest.Id} failed: {result.Error}");
            if (result.State != TaskState.Cancelled || held.Count == 3)
            {
                await RunHookQuietlyAsync(task, hooks, "backup-abort", jobId, guest.Id, guest.TypeName);
            }
        }
        finally
        {
            await EndClusterJobAsync(task, guest, guestJob, clusterSlot, success, result.Error);
            while (held.TryPop(out IDisposable? lease))
            {
                lease.Dispose();
            }
            DateTime ended = DateTime.UtcNow;
            result.DurationSeconds = held.Count == 0 && result.State != TaskState.Queued ? (ended - started).TotalSeconds : 0;
            task.SetGuest(result.Clone());
            catalog.GuestEnded(task.Id, new GuestRecord(guest.Id, result.ArchiveName, StateName(result.State), result.Error, ended,
                result.DurationSeconds, result.BytesRead, 0, result.ArchiveSizeBytes, [.. result.BitmapModes], result.Consistency));
            PublishRun(task.Id);
            guestLog.Close();
            RecordMetrics(span, plan, provider, guest, result);
            await RunHookQuietlyAsync(task, hooks, "log-end", jobId, guest.Id, guest.TypeName, result.ArchiveName.Length > 0 ? result.ArchiveName : null, logFile);
        }
        return success;
    }

    /// <summary>
    /// The runner inside a journal entry: committed before anything touches the guest or the provider, removed once the
    /// runner has torn down and called BackupCleanup, whatever the outcome. A crash in between leaves the entry for
    /// <see cref="Recovery.CrashRecovery"/>.
    /// </summary>
    private async Task<GuestOutcome> RunJournaledAsync(ServiceTask task, BackupPlan plan, ProviderConnection provider, string jobId, string backupId,
        ConfiguredGuest guest, CancellationToken cancellationToken)
    {
        Directory.CreateDirectory(plan.FleecingDirectory, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        // The container's root must traverse to its view: a 0711 directory of this backup in the host's tmp-dir.
        string containerTemp = Path.Combine(config.Host.TemporaryDirectory, $"grpc-backupd-{backupId[..8]}");
        catalog.JournalBegin(new JournalEntry(backupId, jobId, task.Id, plan.Storage.Name, guest.Id, guest.Vm?.QmpSocket ?? "", guest.Vm?.AgentSocket,
            [.. (guest.Vm?.BackedUpDisks ?? []).Select(d => new JournalDisk(d.DeviceName, d.FormatNode, d.FilterNode, d.ThrottleGroup,
                d.Format == Orchestrator.Inventory.DiskFormat.Qcow2))],
            plan.FleecingDirectory, paths.RuntimeDirectory, DateTime.UtcNow, guest.Container is not null, guest.Container?.Cgroup,
            guest.Container is not null ? containerTemp : null));
        try
        {
            if (guest.Vm is { } vm)
            {
                var runner = new VmBackupRunner(provider, new TaskLogger<VmBackupRunner>(task, guest.Id, loggerFactory.CreateLogger<VmBackupRunner>()));
                VmBackupResult backup = await runner.BackupAsync(jobId, vm, new VmBackupOptions
                {
                    BackupId = backupId,
                    FleecingDirectory = plan.FleecingDirectory,
                    RuntimeDirectory = paths.RuntimeDirectory,
                    LockDirectory = paths.LockDirectory,
                    ProviderInactivityTimeout = config.Host.ProviderInactivityTimeout,
                    FleecingReserve = config.Host.FleecingReserve,
                    AgentTimeout = config.Host.AgentTimeout,
                    StorageId = plan.Storage.Name,
                    Mode = plan.Mode switch
                    {
                        JobMode.Stop => VmBackupMode.Stop,
                        JobMode.Suspend => VmBackupMode.Suspend,
                        _ => VmBackupMode.Snapshot,
                    },
                    BandwidthLimit = plan.BandwidthLimit,
                    Progress = new Progress<Protocol.V1.Progress>(p => task.Progress(guest.Id, p.DeviceName, p.BytesDone, p.BytesTotal)),
                }, cancellationToken).ConfigureAwait(false);
                return new GuestOutcome(backup.ArchiveName, backup.Consistency.ToString().ToLowerInvariant(),
                    [.. backup.Volumes.Select(v => $"{v.DeviceName}:{ModeName(v.BitmapMode)}")], (ulong)backup.Volumes.Sum(v => (decimal)v.BytesRead),
                    backup.Stats.ArchiveSizeBytes, backup.Volumes.ToDictionary(v => v.DeviceName, v => v.ContentSha256, StringComparer.Ordinal),
                    Digests: backup.Volumes.Where(v => v.Digest is not null).ToDictionary(v => v.DeviceName,
                        v => new RecordedDigest(v.Digest.Value, backup.ChunkDigests.GetValueOrDefault(v.DeviceName)), StringComparer.Ordinal));
            }
            Directory.CreateDirectory(containerTemp, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute
                | UnixFileMode.GroupExecute | UnixFileMode.OtherExecute);
            try
            {
                var containerRunner = new ContainerBackupRunner(provider,
                    new TaskLogger<ContainerBackupRunner>(task, guest.Id, loggerFactory.CreateLogger<ContainerBackupRunner>()));
                ContainerBackupResult ct = await containerRunner.BackupAsync(jobId, guest.Container!, new ContainerBackupRunOptions
                {
                    BackupId = backupId,
                    RuntimeDirectory = paths.RuntimeDirectory,
                    LockDirectory = paths.LockDirectory,
                    ProviderInactivityTimeout = config.Host.ProviderInactivityTimeout,
                    Mode = plan.Mode switch
                    {
                        JobMode.Stop => ContainerBackupMode.Stop,
                        JobMode.Suspend => ContainerBackupMode.Suspend,
                        _ => ContainerBackupMode.Snapshot,
                    },
                    ExcludePatterns = plan.ExcludePaths ?? [],
                    BandwidthLimit = plan.BandwidthLimit,
                    TemporaryDirectory = containerTemp,
                    ComputeFileManifest = plan.FileManifest,
                }, cancellationToken).ConfigureAwait(false);
                return new GuestOutcome(ct.ArchiveName, plan.Mode.ToString().ToLowerInvariant(), [], 0, ct.Stats.ArchiveSizeBytes,
                    Manifest: ct.Manifest);
            }
            finally
            {
                Directory.Delete(containerTemp, recursive: true);
            }
        }
        finally
        {
            // The runner returns or throws only after its teardown and BackupCleanup: nothing is left to recover.
            catalog.JournalEnd(backupId);
        }
    }

    /// <summary>Notes, retention and the catalog refresh: the archive is listable once BackupCleanup succeeded.</summary>
    private async Task AfterBackupAsync(ServiceTask task, BackupPlan plan, ProviderConnection provider, ConfiguredGuest guest, string archive)
    {
        var operations = provider.Capabilities.RepositoryOperations;
        if (plan.Notes is { } notes && operations.Contains(RepositoryOperation.UpdateBackupAttributes))
        {
            string text = notes.Render(guest.Name, guest.Id, config.Host.Node);
            await provider.Repository.UpdateBackupAttributesAsync(new UpdateBackupAttributesRequest { ArchiveName = archive, Notes = text });
            task.Log("INFO", guest.Id, $"notes: {text}");
        }
        if (!plan.Retention.KeepsEverything)
        {
            if (!operations.Contains(RepositoryOperation.PruneBackups))
            {
                task.Log("WARN", guest.Id, $"storage {plan.Storage.Name} cannot prune (PruneBackups not advertised); retention skipped");
            }
            else
            {
                var prune = await provider.Repository.PruneBackupsAsync(new PruneBackupsRequest { GuestId = guest.Id, Policy = plan.Retention.ToPolicy() },
                    deadline: ProviderDeadlines.FromNow(ProviderDeadlines.Preparation));
                foreach (var decision in prune.Decisions.Where(d => !d.Keep))
                {
                    task.Log("INFO", guest.Id, $"pruned {decision.ArchiveName} ({decision.Reason})");
                }
            }
        }
        if (operations.Contains(RepositoryOperation.ListBackups))
        {
            await CatalogRefresh.RefreshAsync(catalog, provider, plan.Storage.Name, guest.Id, CancellationToken.None);
        }
    }

    private static void RecordMetrics(Activity? span, BackupPlan plan, ProviderConnection provider, ConfiguredGuest guest, GuestResult result)
    {
        var tags = new TagList
        {
            { "storage", plan.Storage.Name },
            { "provider", provider.Info.Name },
            { "guest_type", guest.TypeName },
        };
        var outcome = tags;
        outcome.Add("outcome", StateName(result.State));
        ServiceInstruments.GuestBackups.Add(1, outcome);
        if (result.State != TaskState.Succeeded)
        {
            span?.SetStatus(ActivityStatusCode.Error, result.Error);
            return;
        }
        span?.SetTag("grpc_backup.archive", result.ArchiveName);
        ServiceInstruments.BytesRead.Add((long)result.BytesRead, tags);
        ServiceInstruments.BytesStored.Add((long)result.ArchiveSizeBytes, tags);
        ServiceInstruments.Duration.Record(result.DurationSeconds, tags);
        if (result.DurationSeconds > 0 && result.BytesRead > 0)
        {
            ServiceInstruments.Rate.Record(result.BytesRead / result.DurationSeconds, tags);
        }
    }

    private static string ModeName(BitmapMode mode) => mode switch
    {
        BitmapMode.New => "new",
        BitmapMode.Reuse => "reuse",
        _ => "none",
    };
}
