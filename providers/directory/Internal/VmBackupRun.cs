using System.Net.Sockets;
using Grpc.Backup.Nbd;
using Grpc.Backup.Protocol;
using Grpc.Backup.Protocol.V1;
using Grpc.Backup.Provider;
using Grpc.Backup.Transport;
using Grpc.Core;

namespace Grpc.Backup.Providers.Directory.Internal;

/// <summary>
/// One BackupVm call: validates the start message, claims every NBD socket at once (claims expire), then under the
/// guest's lock chooses incremental bases, stores the configurations and copies the volumes one after the other:
/// full ones into sparse raw files, incremental ones into qcow2 overlays on the previous image.
/// </summary>
internal sealed class VmBackupRun(ArchiveStore store, GuestLocks locks, QemuTools tools, ProviderFds fds,
    DirectoryRepositoryOptions options, TimeProvider timeProvider)
{
    public async Task RunAsync(BackupSession session, BackupVmStart start, IServerStreamWriter<BackupVmEvent> stream,
        CancellationToken cancellationToken)
    {
        List<ValidatedVolume> volumes = BackupVmValidation.Validate(start);
        var sockets = new Dictionary<string, List<Socket>>(StringComparer.Ordinal);
        try
        {
            foreach (ValidatedVolume volume in volumes)
            {
                sockets[volume.Device] = await ClaimSocketsAsync(volume, cancellationToken);
            }
            using IDisposable guestLock = await locks.AcquireAsync(session.GuestId, cancellationToken);
            ChooseBases(session, volumes);
            StoreConfigurations(session, start);

            using var events = new BackupEventWriter(stream, timeProvider);
            var bandwidth = new TokenBucket(start.BandwidthLimit?.BytesPerSecond ?? 0);
            foreach (ValidatedVolume volume in volumes)
            {
                List<Socket> volumeSockets = sockets[volume.Device];
                sockets.Remove(volume.Device);
                ManifestVolume stored = await BackupVolumeAsync(session, volume, volumeSockets, bandwidth, events, cancellationToken);
                session.Volumes.Add(stored);
            }
            WriteManifest(session, start, complete: false);
        }
        finally
        {
            foreach (Socket socket in sockets.Values.SelectMany(s => s))
            {
                socket.Dispose();
            }
        }
    }

    private async Task<List<Socket>> ClaimSocketsAsync(ValidatedVolume volume, CancellationToken cancellationToken)
    {
        var claimed = new List<Socket>();
        try
        {
            FdRef first = volume.Source.Socket;
            for (uint i = 0; i <= volume.Source.ExtraConnections; i++)
            {
                var reference = new FdRef { TransferToken = first.TransferToken, Index = first.Index + i, Kind = first.Kind };
                using PassedFd passed = await fds.ClaimAsync(reference, cancellationToken);
                claimed.Add(passed.TakeSocket());
            }
            return claimed;
        }
        catch
        {
            foreach (Socket socket in claimed)
            {
                socket.Dispose();
            }
            throw;
        }
    }

    /// <summary>REUSE stacks on the device's last successful backup; without one (or with another size) it cannot.</summary>
    private void ChooseBases(BackupSession session, List<ValidatedVolume> volumes)
    {
        foreach (ValidatedVolume volume in volumes.Where(v => v.IsIncremental))
        {
            volume.Base = store.FindIncrementalBase(session.GuestId, volume.Device, volume.SizeBytes)
                ?? throw ProviderErrors.Create(StatusCode.FailedPrecondition, ErrorReason.SizeMismatch,
                    $"device {volume.Device} is REUSE, but this repository has no previous backup of it with {volume.SizeBytes} bytes; "
                    + "the next backup must be NEW");
        }
    }

    private void StoreConfigurations(BackupSession session, BackupVmStart start)
    {
        try
        {
            AtomicFile.Write(store.FileIn(session.Archive, ArchiveStore.GuestConfigFileName), start.GuestConfig.Span);
            if (start.HasFirewallConfig)
            {
                AtomicFile.Write(store.FileIn(session.Archive, ArchiveStore.FirewallConfigFileName), start.FirewallConfig.Span);
            }
            WriteManifest(session, start, complete: false);
        }
        catch (Exception e) when (DirectoryErrors.IsStorageFailure(e))
        {
            throw DirectoryErrors.FromStorage(e, "storing the guest configuration");
        }
    }

    private async Task<ManifestVolume> BackupVolumeAsync(BackupSession session, ValidatedVolume volume, List<Socket> sockets,
        TokenBucket bandwidth, BackupEventWriter events, CancellationToken cancellationToken)
    {
        string context = volume.IsIncremental ? volume.Source.BitmapContext : NbdMetaContexts.BaseAllocation;
        await using NbdSource source = await ConnectAsync(volume, sockets, context, cancellationToken);
        if (source.Export.Size != volume.SizeBytes)
        {
            throw DirectoryErrors.InvalidArgument(
                $"device {volume.Device} was declared with {volume.SizeBytes} bytes but its NBD export has {source.Export.Size}");
        }
        if (!source.CanTrim)
        {
            await events.LogAsync(LogRecord.Types.Level.Info,
                $"{volume.Device}: the export does not accept TRIM{(source.Export.IsReadOnly ? " (read-only)" : "")}; copying without trimming",
                cancellationToken);
        }

        string directory = store.DirectoryOf(session.Archive);
        string format = volume.IsIncremental ? ManifestVolume.FormatQcow2 : ManifestVolume.FormatRaw;
        string fileName = volume.Device + "." + format;
        VolumeCopyResult result;
        await using (IVolumeTarget target = await CreateTargetAsync(volume, directory, fileName, cancellationToken))
        {
            var copier = new VolumeCopier(volume.Device, source, target, bandwidth, events, options.CopyRequestSize, options.CopyDepth);
            result = volume.IsIncremental
                ? await copier.CopyAsync(ExtentMap.ClassifyDirty, ExtentAction.Copy, cancellationToken)
                : await copier.CopyAsync(ExtentMap.ClassifyAllocation, ExtentAction.Copy, cancellationToken);
            try
            {
                await target.FinishAsync(cancellationToken);
            }
            catch (Exception e) when (e is ExternalToolException || DirectoryErrors.IsStorageFailure(e))
            {
                throw DirectoryErrors.FromStorage(e, $"finishing the image of {volume.Device}");
            }
        }

        await events.CompletedAsync(new VolumeCompleted
        {
            DeviceName = volume.Device,
            BitmapMode = volume.BitmapMode,
            BytesRead = (ulong)result.BytesRead,
            BytesStored = (ulong)result.BytesStored,
        }, cancellationToken);
        await events.LogAsync(LogRecord.Types.Level.Info, volume.Base is { } stackedOn
            ? $"{volume.Device}: incremental on {stackedOn.Archive.Name}, read {result.BytesRead} bytes, stored {result.BytesStored}"
            : $"{volume.Device}: full, read {result.BytesRead} of {volume.SizeBytes} bytes, stored {result.BytesStored}",
            cancellationToken);
        return new ManifestVolume
        {
            Device = volume.Device,
            SizeBytes = volume.SizeBytes,
            File = fileName,
            Format = format,
            Parent = volume.Base?.Archive.Name,
            BitmapMode = volume.ModeName,
            BytesRead = result.BytesRead,
            BytesStored = result.BytesStored,
        };
    }

    private async Task<NbdSource> ConnectAsync(ValidatedVolume volume, List<Socket> sockets, string context,
        CancellationToken cancellationToken)
    {
        try
        {
            return await NbdSource.ConnectAsync(sockets, volume.Source.ExportName, context, requireContext: volume.IsIncremental,
                options.CopyRequestSize, options.CopyDepth, cancellationToken);
        }
        catch (NbdHandshakeException e)
        {
            throw DirectoryErrors.InvalidArgument($"device {volume.Device}: the NBD handshake on the passed socket failed: {e.Message}");
        }
        catch (Exception e) when (SnapshotErrors.IsNbdFailure(e) && !cancellationToken.IsCancellationRequested)
        {
            throw SnapshotErrors.Broken(volume.Device, "connecting to its export", e);
        }
    }

    private async Task<IVolumeTarget> CreateTargetAsync(ValidatedVolume volume, string directory, string fileName,
        CancellationToken cancellationToken)
    {
        try
        {
            if (volume.Base is not { } stackOn)
            {
                return RawFileTarget.Create(Path.Join(directory, fileName), volume.SizeBytes);
            }
            return await OverlayTarget.CreateAsync(tools, directory, fileName, ArchiveStore.RelativeImagePath(stackOn.Archive, stackOn.Volume),
                stackOn.Volume.Format, volume.SizeBytes, options.CopyRequestSize, options.CopyDepth, cancellationToken);
        }
        catch (Exception e) when (e is ExternalToolException || DirectoryErrors.IsStorageFailure(e))
        {
            throw DirectoryErrors.FromStorage(e, $"creating the image of {volume.Device}");
        }
    }

    private void WriteManifest(BackupSession session, BackupVmStart start, bool complete)
    {
        ArchiveManifest manifest = store.TryReadManifest(session.Archive)
            ?? throw DirectoryErrors.FromStorage(new IOException("the archive's manifest disappeared"), "updating the manifest");
        manifest.Complete = complete;
        manifest.HasFirewallConfig = start.HasFirewallConfig;
        manifest.Consistency = start.Consistency.ToString();
        manifest.Volumes.Clear();
        manifest.Volumes.AddRange(session.Volumes);
        store.WriteManifest(session.Archive, manifest);
    }
}
