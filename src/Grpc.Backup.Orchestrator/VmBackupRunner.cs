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
        var (result, stats) = await new GuestBackupSession(provider, logger).RunAsync(jobId, GuestType.Vm, guest.GuestId, guest.Name,
            options.RuntimeDirectory, options.BackupId, (backupId, archiveName, log) => RunAsync(jobId, backupId, archiveName, guest, options, log, cancellationToken),
            cancellationToken);
        return result with { Stats = stats };
    }

    private async Task<VmBackupResult> RunAsync(string jobId, string backupId, string archiveName, VmGuest guest,
        VmBackupOptions options, TaskLog log, CancellationToken cancellationToken)
    {
        var mechanism = await provider.Backup.BackupGetMechanismAsync(
            new BackupGetMechanismRequest { BackupId = backupId, GuestType = GuestType.Vm }, cancellationToken: cancellationToken);
        if (mechanism.MechanismCase != BackupGetMechanismResponse.MechanismOneofCase.Vm
            || mechanism.Vm != VmBackupMechanism.Nbd || !provider.Capabilities.VmBackupMechanisms.Contains(VmBackupMechanism.Nbd))
        {
            throw new BackupException($"provider chose VM mechanism {mechanism.Vm}, which this host does not offer or the provider did not advertise");
        }
        var disks = guest.BackedUpDisks.ToList();
        foreach (VmDisk excluded in guest.Disks.Where(d => !d.Backup))
        {
            log.Info($"{excluded.DeviceName}: excluded from backup");
        }
        QmpClient? qmp = await TryConnectQmpAsync(guest, cancellationToken);
        if (qmp is null)
        {
            log.Info("the VM is not running: its images are exported read-only, with their persistent bitmaps");
            return await RunStoppedAsync(backupId, archiveName, guest, disks, options, log, cancellationToken);
        }
        await using var _ = qmp;
        IReadOnlyDictionary<string, ulong> sizes = await BlockNodes.GetVirtualSizesAsync(qmp, disks.Select(d => d.FormatNode), cancellationToken);
        var choices = await QueryIncrementalAsync(backupId, disks.Select(d => new VolumeSize { DeviceName = d.DeviceName, SizeBytes = sizes[d.FormatNode] }),
            cancellationToken);

        var quiescer = new GuestQuiescer(qmp, guest.AgentSocket, options.AgentTimeout, log);
        var snapshotDisks = disks.Select(d => new SnapshotDisk(d.DeviceName, d.FormatNode, d.FilterNode, d.ThrottleGroup,
            d.Format == DiskFormat.Qcow2, ToRequest(choices.GetValueOrDefault(d.DeviceName)))).ToList();
        bool stored = false;
        var access = await VmSnapshotAccess.SetupAsync(qmp, snapshotDisks, new SnapshotAccessOptions
        {
            FleecingDirectory = options.FleecingDirectory,
            NbdSocketPath = Path.Combine(options.RuntimeDirectory, $"snap-{backupId[..8]}.sock"),
            StorageId = options.StorageId,
            CbwTimeout = options.CbwTimeout,
            Quiesce = quiescer.QuiesceAsync,
            Log = (level, message) => (level == SnapshotAccessLogLevel.Warning ? (Action<string>)log.Warn : log.Info)(message),
        }, cancellationToken);
        try
        {
            var completed = await StreamAsync(backupId, guest, access.Exports, quiescer.Achieved, options, log, cancellationToken);
            stored = true;
            return new VmBackupResult(archiveName, completed, new BackupStats(), quiescer.Achieved);
        }
        finally
        {
            // Teardown runs in the required order whatever happened; the bitmap transaction follows the outcome.
            await access.TeardownAsync(stored, CancellationToken.None);
            log.Info($"snapshot access torn down ({(stored ? "success" : "failure")} bitmap transaction)");
        }
    }

    /// <summary>A stopped VM has no writer: each image is exported read-only by qemu-nbd, with its bitmap.</summary>
    private async Task<VmBackupResult> RunStoppedAsync(string backupId, string archiveName, VmGuest guest, List<VmDisk> disks,
        VmBackupOptions options, TaskLog log, CancellationToken cancellationToken)
    {
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
            }
            var completed = await StreamAsync(backupId, guest, exports.Select(e => e.Export).ToList(), Consistency.Stopped, options, log,
                cancellationToken);
            stored = true;
            return new VmBackupResult(archiveName, completed, new BackupStats(), Consistency.Stopped);
        }
        finally
        {
            foreach (OfflineImageExport export in exports)
            {
                await export.FinishAsync(stored, CancellationToken.None);
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

    private async Task<List<VolumeCompleted>> StreamAsync(string backupId, VmGuest guest, IReadOnlyList<SnapshotExport> exports,
        Consistency consistency, VmBackupOptions options, TaskLog log, CancellationToken cancellationToken)
    {
        // One connected socket per export, passed in one sideband transfer; the host's copies close when the call ends.
        var sockets = new List<Socket>();
        try
        {
            foreach (SnapshotExport export in exports)
            {
                var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
                sockets.Add(socket);
                await socket.ConnectAsync(new UnixDomainSocketEndPoint(export.NbdSocketPath), cancellationToken);
            }
            IReadOnlyList<FdRef> refs = await provider.SendFdsAsync(
                sockets.Select(s => new FdToSend(s.SafeHandle, Transport.FdKind.NbdSocket)).ToList(), cancellationToken);
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
                start.Volumes.Add(new VmVolume
                {
                    DeviceName = export.DeviceName,
                    SizeBytes = export.SizeBytes,
                    BitmapMode = ToMode(export.Bitmap),
                    Nbd = new NbdVolumeSource { Socket = refs[i], ExportName = export.ExportName, BitmapContext = export.BitmapContext ?? "" },
                });
                log.Info($"{export.DeviceName}: {export.SizeBytes} bytes, bitmap {export.Bitmap}");
            }
            using var call = provider.Backup.BackupVm(cancellationToken: cancellationToken);
            await call.RequestStream.WriteAsync(new BackupVmRequest { Start = start }, cancellationToken);
            await call.RequestStream.CompleteAsync();
            var completed = new List<VolumeCompleted>();
            var lastProgress = new Dictionary<string, DateTime>(StringComparer.Ordinal);
            while (await call.ResponseStream.MoveNext(cancellationToken))
            {
                BackupVmEvent e = call.ResponseStream.Current;
                switch (e.EventCase)
                {
                    case BackupVmEvent.EventOneofCase.Progress:
                        options.Progress?.Report(e.Progress);
                        if (DateTime.UtcNow - lastProgress.GetValueOrDefault(e.Progress.DeviceName) > TimeSpan.FromSeconds(5))
                        {
                            lastProgress[e.Progress.DeviceName] = DateTime.UtcNow;
                            log.Info($"{e.Progress.DeviceName}: {e.Progress.BytesDone} of {e.Progress.BytesTotal} bytes");
                        }
                        break;
                    case BackupVmEvent.EventOneofCase.Log:
                        log.Info($"provider: {e.Log.Message}");
                        break;
                    case BackupVmEvent.EventOneofCase.VolumeCompleted:
                        VolumeCompleted done = e.VolumeCompleted;
                        if (exports.All(x => x.DeviceName != done.DeviceName) || completed.Any(c => c.DeviceName == done.DeviceName))
                        {
                            throw new BackupException($"provider reported completion of unknown or repeated volume '{done.DeviceName}'");
                        }
                        completed.Add(done);
                        log.Info($"{done.DeviceName}: stored, read {done.BytesRead} bytes, added {done.BytesStored} bytes, mode {done.BitmapMode}");
                        break;
                }
            }
            if (completed.Count != exports.Count)
            {
                throw new BackupException($"provider ended BackupVm after {completed.Count} of {exports.Count} volumes");
            }
            return completed;
        }
        finally
        {
            foreach (Socket socket in sockets)
            {
                // shutdown() acts on the connection, not on this fd: the provider's copies go dead too, so QEMU sees
                // its NBD clients end now even if a provider (or a transfer still in flight) holds the other fds.
                try
                {
                    socket.Shutdown(SocketShutdown.Both);
                }
                catch (SocketException)
                {
                }
                socket.Dispose();
            }
        }
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
