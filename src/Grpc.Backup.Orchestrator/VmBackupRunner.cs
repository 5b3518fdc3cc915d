using System.Net.Sockets;
using Grpc.Backup.Host;
using Grpc.Backup.Orchestrator.Internal;
using Grpc.Backup.Orchestrator.Inventory;
using Grpc.Backup.Protocol;
using Grpc.Backup.Protocol.V1;
using Grpc.Backup.Qemu;
using Grpc.Backup.Transport;
using Grpc.Core;
using Microsoft.Extensions.Logging;

namespace Grpc.Backup.Orchestrator;

/// <summary>
/// Backs up one running VM through one provider, in the contract's order: BackupInit, BackupGetMechanism,
/// BackupVmQueryIncremental, snapshot access, BackupVm with the NBD sockets passed on the sideband, teardown, log
/// hand-off, and BackupCleanup, which runs on every path.
/// </summary>
public sealed class VmBackupRunner(ProviderConnection provider, ILogger<VmBackupRunner> logger)
{
    public async Task<VmBackupResult> BackupAsync(string jobId, VmGuest guest, VmBackupOptions options, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(guest);
        ArgumentNullException.ThrowIfNull(options);
        // Held until the bitmaps are settled: another process must not see this guest's graph or bitmaps half-way.
        using GuestLock? guestLock = options.LockDirectory is null ? null : GuestLock.Acquire(options.LockDirectory, guest.GuestId);
        // The bitmaps move only once BackupCleanup(success=true) returned OK; on every other path they are folded back.
        await using var pending = new PendingBitmaps();
        var phases = new PhaseTimings();
        var (result, stats) = await new GuestBackupSession(provider, logger).RunAsync(jobId, GuestType.Vm, guest.GuestId, guest.Name,
            options.RuntimeDirectory, options.BackupId,
            (backupId, archiveName, log) => RunAsync(jobId, backupId, archiveName, guest, options, pending, phases, log, cancellationToken),
            cancellationToken, pending.SettleAsync, phases);
        return result with { Stats = stats, Phases = phases };
    }

    private async Task<VmBackupResult> RunAsync(string jobId, string backupId, string archiveName, VmGuest guest,
        VmBackupOptions options, PendingBitmaps pending, PhaseTimings phases, TaskLog log, CancellationToken cancellationToken)
    {
        PhaseTimings.Measurement init = phases.Measure("init");
        var mechanism = await provider.Backup.BackupGetMechanismAsync(
            new BackupGetMechanismRequest { BackupId = backupId, GuestType = GuestType.Vm }, cancellationToken: cancellationToken);
        if (mechanism.MechanismCase != BackupGetMechanismResponse.MechanismOneofCase.Vm
            || mechanism.Vm is not (VmBackupMechanism.Nbd or VmBackupMechanism.FileHandle)
            || !provider.Capabilities.VmBackupMechanisms.Contains(mechanism.Vm))
        {
            throw new BackupException($"provider chose VM mechanism {mechanism.Vm}, which this host does not offer or the provider did not advertise");
        }
        VmBackupMechanism chosen = mechanism.Vm;
        log.Info($"mechanism {chosen}");
        var disks = guest.BackedUpDisks.ToList();
        foreach (VmDisk excluded in guest.Disks.Where(d => !d.Backup))
        {
            log.Info($"{excluded.DeviceName}: excluded from backup");
        }
        QmpClient? qmp = await TryConnectQmpAsync(guest, cancellationToken);
        if (qmp is null)
        {
            log.Info("the VM is not running: its images are exported read-only, with their persistent bitmaps");
            if (chosen == VmBackupMechanism.FileHandle)
            {
                throw new BackupException("the VM is stopped and the provider chose FILE_HANDLE; stopped VMs are exported over NBD only");
            }
            init.Dispose();
            return await RunStoppedAsync(backupId, archiveName, guest, disks, options, pending, phases, log, cancellationToken);
        }
        // Open until the bitmaps are settled, after BackupCleanup.
        pending.Own(qmp);
        IReadOnlyDictionary<string, ulong> sizes = await BlockNodes.GetVirtualSizesAsync(qmp, disks.Select(d => d.FormatNode), cancellationToken);
        var choices = await QueryIncrementalAsync(backupId, disks.Select(d => new VolumeSize { DeviceName = d.DeviceName, SizeBytes = sizes[d.FormatNode] }),
            cancellationToken);
        init.Dispose();

        var quiescer = new GuestQuiescer(qmp, guest.AgentSocket, options.AgentTimeout, log);
        var modeGuard = new BackupModeGuard(qmp, options.Mode, options.ShutdownTimeout, log);
        var snapshotDisks = disks.Select(d => new SnapshotDisk(d.DeviceName, d.FormatNode, d.FilterNode, d.ThrottleGroup,
            d.Format == DiskFormat.Qcow2, ToRequest(choices.GetValueOrDefault(d.DeviceName)))).ToList();
        bool stored = false;
        VmSnapshotAccess access;
        Consistency? held = null;
        long setupStarted = System.Diagnostics.Stopwatch.GetTimestamp();
        TimeSpan frozen = TimeSpan.Zero;
        try
        {
            await modeGuard.EnterAsync(cancellationToken);
            held = modeGuard.Holds ? modeGuard.HeldConsistency : null;
            access = await VmSnapshotAccess.SetupAsync(qmp, snapshotDisks, new SnapshotAccessOptions
            {
                FleecingDirectory = options.FleecingDirectory,
                NbdSocketPath = Path.Combine(options.RuntimeDirectory, $"snap-{backupId[..8]}.sock"),
                StorageId = options.StorageId,
                CbwTimeout = options.CbwTimeout,
                // A guest the mode holds (paused or shut down) cannot write, and its agent cannot answer a freeze.
                Quiesce = modeGuard.Holds ? _ => Task.FromResult<IAsyncDisposable?>(new HeldGuest()) : async ct =>
                {
                    long freezeStarted = System.Diagnostics.Stopwatch.GetTimestamp();
                    try
                    {
                        return await quiescer.QuiesceAsync(ct);
                    }
                    finally
                    {
                        frozen = System.Diagnostics.Stopwatch.GetElapsedTime(freezeStarted);
                    }
                },
                Log = (level, message) => (level == SnapshotAccessLogLevel.Warning ? (Action<string>)log.Warn : log.Info)(message),
            }, cancellationToken);
            pending.Own(access);
            pending.Add(access.SettleBitmapsAsync);
        }
        finally
        {
            // vzdump's order: the guest gets its state back as soon as snapshot access exists (or failed to).
            await modeGuard.RestoreAsync();
            phases.Add("quiesce", frozen);
            phases.Add("setup", System.Diagnostics.Stopwatch.GetElapsedTime(setupStarted) - frozen);
        }
        Consistency consistency = held ?? quiescer.Achieved;
        try
        {
            IReadOnlyList<SnapshotExport> exports = access.Exports;
            List<List<Extent>>? extents = null;
            SnapshotFileMounts? mounts = null;
            IReadOnlyList<string>? files = null;
            if (chosen == VmBackupMechanism.FileHandle)
            {
                // Mapped over NBD before the provider holds any fd (block status of a range it already punched fails);
                // then each export is mounted as a file for the provider.
                extents = [];
                foreach (SnapshotExport export in exports)
                {
                    extents.Add(await SnapshotExtentMap.BuildAsync(export, cancellationToken));
                }
                mounts = SnapshotFileMounts.Create(Path.Combine(options.RuntimeDirectory, $"files-{backupId[..8]}"));
            }
            ReceivedVolumes completed;
            // The job's limit, enforced by the host in the NBD guards every snapshot read passes (not by a QEMU throttle
            // node over snapshot-access: reads through one returned data written after the instant, issue 15).
            BandwidthThrottle? bandwidth = options.BandwidthLimit > 0 ? new BandwidthThrottle(options.BandwidthLimit) : null;
            // Unmounted before the snapshot is torn down, on every path.
            await using (mounts)
            {
                if (mounts is not null)
                {
                    var paths = new List<string>();
                    foreach (SnapshotExport export in exports)
                    {
                        paths.Add(await mounts.MountAsync(export, bandwidth, cancellationToken));
                    }
                    files = paths;
                }
                using (phases.Measure("copy"))
                {
                    completed = await StreamAsync(backupId, guest, exports, extents, files, consistency, options, options.FleecingDirectory, bandwidth, log,
                        cancellationToken);
                }
            }
            stored = true;
            return new VmBackupResult(archiveName, completed.Volumes, new BackupStats(), consistency) { ChunkDigests = completed.ChunkDigests };
        }
        finally
        {
            // Teardown runs in the required order whatever happened. After a failure the bitmaps are folded back now;
            // after a success they wait for BackupCleanup's answer (PendingBitmaps).
            using (phases.Measure("teardown"))
            {
                await access.TeardownAsync(stored, CancellationToken.None);
            }
            log.Info(stored ? "snapshot access torn down; bitmaps wait for the provider's commit" : "snapshot access torn down (failure bitmap transaction)");
        }
    }

    /// <summary>A stopped VM has no writer: each image is exported read-only by qemu-nbd, with its bitmap.</summary>
    private async Task<VmBackupResult> RunStoppedAsync(string backupId, string archiveName, VmGuest guest, List<VmDisk> disks,
        VmBackupOptions options, PendingBitmaps pending, PhaseTimings phases, TaskLog log, CancellationToken cancellationToken)
    {
        PhaseTimings.Measurement setup = phases.Measure("setup");
        var sizes = new Dictionary<string, ulong>(StringComparer.Ordinal);
        foreach (VmDisk disk in disks)
        {
            sizes[disk.DeviceName] = await QemuImg.GetVirtualSizeAsync(disk.ImagePath, disk.Format, cancellationToken);
        }
        var choices = await QueryIncrementalAsync(backupId, disks.Select(d => new VolumeSize { DeviceName = d.DeviceName, SizeBytes = sizes[d.DeviceName] }),
            cancellationToken);
        var exports = new List<OfflineImageExport>();
        bool stored = false;
        try
        {
            foreach (VmDisk disk in disks)
            {
                exports.Add(await OfflineImageExport.StartAsync(new OfflineImageExportOptions
                {
                    ImagePath = disk.ImagePath,
                    Format = disk.Format == DiskFormat.Qcow2 ? "qcow2" : "raw",
                    DeviceName = disk.DeviceName,
                    NbdSocketPath = Path.Combine(options.RuntimeDirectory, $"off-{backupId[..8]}-{exports.Count}.sock"),
                    BitmapName = $"grpc-backup-{options.StorageId}-{disk.DeviceName}",
                    Bitmap = ToRequest(choices.GetValueOrDefault(disk.DeviceName)),
                }, cancellationToken));
                OfflineImageExport started = exports[^1];
                pending.Add(committed => started.SettleBitmapAsync(committed, CancellationToken.None));
            }
            setup.Dispose();
            BandwidthThrottle? bandwidth = options.BandwidthLimit > 0 ? new BandwidthThrottle(options.BandwidthLimit) : null;
            ReceivedVolumes completed;
            using (phases.Measure("copy"))
            {
                completed = await StreamAsync(backupId, guest, exports.Select(e => e.Export).ToList(), null, null, Consistency.Stopped, options,
                    fleecingDirectory: null, bandwidth, log, cancellationToken);
            }
            stored = true;
            return new VmBackupResult(archiveName, completed.Volumes, new BackupStats(), Consistency.Stopped) { ChunkDigests = completed.ChunkDigests };
        }
        finally
        {
            using (phases.Measure("teardown"))
            {
                foreach (OfflineImageExport export in exports)
                {
                    await export.FinishAsync(stored, CancellationToken.None);
                }
            }
        }
    }

    private async Task<Dictionary<string, IncrementalChoice>> QueryIncrementalAsync(string backupId, IEnumerable<VolumeSize> volumes,
        CancellationToken cancellationToken)
    {
        var query = new BackupVmQueryIncrementalRequest { BackupId = backupId };
        query.Volumes.AddRange(volumes);
        return (await provider.Backup.BackupVmQueryIncrementalAsync(query, cancellationToken: cancellationToken))
            .Choices.ToDictionary(c => c.DeviceName, c => c.Choice_, StringComparer.Ordinal);
    }

    /// <summary>The VM's QMP monitor, or null when nothing listens there (the VM is stopped).</summary>
    private static async Task<QmpClient?> TryConnectQmpAsync(VmGuest guest, CancellationToken cancellationToken)
    {
        if (!File.Exists(guest.QmpSocket))
        {
            return null;
        }
        try
        {
            return await QmpClient.ConnectAsync(guest.QmpSocket, cancellationToken);
        }
        catch (SocketException e) when (e.SocketErrorCode is SocketError.ConnectionRefused or SocketError.AddressNotAvailable)
        {
            return null;
        }
    }

    /// <param name="fleecingDirectory">Watched for free space while the guest runs on copy-before-write; null for a stopped guest.</param>
    private async Task<ReceivedVolumes> StreamAsync(string backupId, VmGuest guest, IReadOnlyList<SnapshotExport> exports,
        List<List<Extent>>? extents, IReadOnlyList<string>? files, Consistency consistency, VmBackupOptions options, string? fleecingDirectory,
        BandwidthThrottle? bandwidth, TaskLog log, CancellationToken cancellationToken)
    {
        // Nothing waits forever on the provider, and the fleecing filesystem never fills under the guest.
        using var watchdog = new BackupWatchdog(options.ProviderInactivityTimeout, fleecingDirectory, options.FleecingReserve, cancellationToken);
        try
        {
            return await StreamCoreAsync(backupId, guest, exports, extents, files, consistency, options, bandwidth, log, watchdog);
        }
        catch (Exception e) when (watchdog.Failure is { } failure && e is OperationCanceledException or RpcException or IOException)
        {
            throw failure;
        }
    }

    private async Task<ReceivedVolumes> StreamCoreAsync(string backupId, VmGuest guest, IReadOnlyList<SnapshotExport> exports,
        List<List<Extent>>? extents, IReadOnlyList<string>? files, Consistency consistency, VmBackupOptions options, BandwidthThrottle? bandwidth,
        TaskLog log, BackupWatchdog watchdog)
    {
        CancellationToken cancellationToken = watchdog.Token;
        // One source per export (a connected NBD socket, or with extents the FUSE file opened read-write), passed in
        // one sideband transfer; the host's copies are closed when the call ends.
        await using var sources = new PassedVolumeSources();
        for (int i = 0; i < exports.Count; i++)
        {
            SnapshotExport export = exports[i];
            if (files is not null)
            {
                sources.AddFile(files[i]);
            }
            else
            {
                await sources.ConnectNbdAsync(export, bandwidth, cancellationToken);
            }
        }
        IReadOnlyList<FdRef> refs = await provider.SendFdsAsync(sources.ToSend(), cancellationToken);
        var start = new BackupVmStart
        {
            BackupId = backupId,
            GuestConfig = Google.Protobuf.ByteString.CopyFrom(guest.RawConfig.Span),
            BandwidthLimit = new BandwidthLimit { BytesPerSecond = options.BandwidthLimit },
            Consistency = consistency,
        };
        for (int i = 0; i < exports.Count; i++)
        {
            SnapshotExport export = exports[i];
            var volume = new VmVolume { DeviceName = export.DeviceName, SizeBytes = export.SizeBytes, BitmapMode = ToMode(export.Bitmap) };
            if (extents is null || files is null)
            {
                volume.Nbd = new NbdVolumeSource { Socket = refs[i], ExportName = export.ExportName, BitmapContext = export.BitmapContext ?? "" };
                log.Info($"{export.DeviceName}: {export.SizeBytes} bytes, bitmap {export.Bitmap}");
            }
            else
            {
                volume.File = new FileVolumeSource { File = refs[i] };
                log.Info($"{export.DeviceName}: {export.SizeBytes} bytes, bitmap {export.Bitmap}, {extents[i].Count} extents "
                    + $"({extents[i].Where(e => !e.Zero).Sum(e => (long)e.Length)} bytes of data)");
            }
            start.Volumes.Add(volume);
        }

        using var call = provider.Backup.BackupVm(cancellationToken: cancellationToken);
        await call.RequestStream.WriteAsync(new BackupVmRequest { Start = start }, cancellationToken);
        // Extents go out while events come in: a provider busy with one volume must be able to send progress before it
        // reads the next volume's extents, so neither side may wait for the other's stream.
        Task sending = SendExtentsAsync(call.RequestStream, exports, extents, cancellationToken);
        try
        {
            var completed = await ReceiveEventsAsync(call.ResponseStream, exports, options.Progress, log, watchdog, cancellationToken);
            await sending;
            return completed;
        }
        finally
        {
            // On failure the call's disposal fails the pending write; that outcome is not the one to report.
            _ = sending.ContinueWith(t => _ = t.Exception, CancellationToken.None, TaskContinuationOptions.OnlyOnFaulted, TaskScheduler.Default);
        }
    }

    private static async Task SendExtentsAsync(IClientStreamWriter<BackupVmRequest> requests, IReadOnlyList<SnapshotExport> exports,
        List<List<Extent>>? extents, CancellationToken cancellationToken)
    {
        for (int i = 0; extents is not null && i < exports.Count; i++)
        {
            foreach (VolumeExtents message in SnapshotExtentMap.ToMessages(exports[i].DeviceName, extents[i]))
            {
                await requests.WriteAsync(new BackupVmRequest { Extents = message }, cancellationToken);
            }
        }
        await requests.CompleteAsync();
    }

    private static async Task<ReceivedVolumes> ReceiveEventsAsync(IAsyncStreamReader<BackupVmEvent> events,
        IReadOnlyList<SnapshotExport> exports, IProgress<Progress>? progress, TaskLog log, BackupWatchdog watchdog, CancellationToken cancellationToken)
    {
        var completed = new List<VolumeCompleted>();
        var digests = new ChunkDigestCollector(exports);
        // Keyed by the request's devices only: a provider cannot grow the map with names of its own choosing.
        var volumes = exports.ToDictionary(x => x.DeviceName, x => new VolumeProgress(x.SizeBytes), StringComparer.Ordinal);
        while (await events.MoveNext(cancellationToken))
        {
            BackupVmEvent e = events.Current;
            switch (e.EventCase)
            {
                case BackupVmEvent.EventOneofCase.Progress:
                    if (!volumes.TryGetValue(e.Progress.DeviceName, out VolumeProgress? volume))
                    {
                        throw new BackupException($"provider reported progress for unknown volume '{ProviderText.Sanitize(e.Progress.DeviceName, 64)}'");
                    }
                    if (e.Progress.BytesDone > volume.Size || e.Progress.BytesTotal > volume.Size)
                    {
                        throw new BackupException($"provider reported progress beyond the size of {e.Progress.DeviceName}: "
                            + $"{e.Progress.BytesDone} of {e.Progress.BytesTotal} bytes, the volume has {volume.Size}");
                    }
                    // Only bytes that advance count as progress: repeating the same event does not keep a stalled copy
                    // alive past the inactivity timeout.
                    if (e.Progress.BytesDone > volume.Done)
                    {
                        volume.Done = e.Progress.BytesDone;
                        watchdog.Kick();
                    }
                    progress?.Report(e.Progress);
                    if (DateTime.UtcNow - volume.LastLogged > TimeSpan.FromSeconds(5))
                    {
                        volume.LastLogged = DateTime.UtcNow;
                        log.Info($"{e.Progress.DeviceName}: {e.Progress.BytesDone} of {e.Progress.BytesTotal} bytes");
                    }
                    break;
                case BackupVmEvent.EventOneofCase.Log:
                    log.Info($"provider: {e.Log.Message}");
                    break;
                case BackupVmEvent.EventOneofCase.ChunkDigests:
                    digests.Add(e.ChunkDigests);
                    watchdog.Kick();
                    break;
                case BackupVmEvent.EventOneofCase.VolumeCompleted:
                    VolumeCompleted done = e.VolumeCompleted;
                    if (exports.All(x => x.DeviceName != done.DeviceName) || completed.Any(c => c.DeviceName == done.DeviceName))
                    {
                        throw new BackupException($"provider reported completion of unknown or repeated volume '{done.DeviceName}'");
                    }
                    if (!VolumeChecksum.IsWellFormed(done.ContentSha256))
                    {
                        throw new BackupException($"provider reported a malformed content_sha256 for {done.DeviceName}: it must be 64 lowercase hex digits or empty");
                    }
                    digests.Complete(done);
                    watchdog.Kick();
                    completed.Add(done);
                    log.Info($"{done.DeviceName}: stored, read {done.BytesRead} bytes, added {done.BytesStored} bytes, mode {done.BitmapMode}");
                    break;
            }
        }
        if (completed.Count != exports.Count)
        {
            throw new BackupException($"provider ended BackupVm after {completed.Count} of {exports.Count} volumes");
        }
        return new ReceivedVolumes(completed, digests.Completed);
    }

    /// <summary>What the provider has reported of one volume.</summary>
    private sealed class VolumeProgress(ulong size)
    {
        public ulong Size { get; } = size;

        public ulong Done { get; set; }

        public DateTime LastLogged { get; set; }
    }

    /// <summary>The quiesce window of a guest the backup mode already holds still.</summary>
    private sealed class HeldGuest : IAsyncDisposable
    {
        public ValueTask DisposeAsync() => ValueTask.CompletedTask;
    }

    private static BitmapRequest ToRequest(IncrementalChoice choice) => choice switch
    {
        IncrementalChoice.Use => BitmapRequest.Use,
        IncrementalChoice.New => BitmapRequest.New,
        _ => BitmapRequest.None,
    };

    private static BitmapMode ToMode(BitmapOutcome outcome) => outcome switch
    {
        BitmapOutcome.Reuse => BitmapMode.Reuse,
        BitmapOutcome.New => BitmapMode.New,
        _ => BitmapMode.None,
    };
}
