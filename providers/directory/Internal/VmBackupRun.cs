using System.Net.Sockets;
using Grpc.Backup.Nbd;
using Grpc.Backup.Protocol;
using Grpc.Backup.Protocol.V1;
using Grpc.Backup.Provider;
using Grpc.Core;
using Microsoft.Win32.SafeHandles;

namespace Grpc.Backup.Providers.Directory.Internal;

/// <summary>
/// One BackupVm call: validates the start message, claims every passed fd at once (claims expire): NBD sockets or
/// snapshot files; then under the guest's lock chooses incremental bases, stores the configurations, opens and plans
/// every volume (FILE_HANDLE extents are read from the request stream in the volumes' order) and copies up to
/// <see cref="DirectoryRepositoryOptions.ParallelVolumes"/> volumes at once: full ones into sparse raw files,
/// incremental ones into qcow2 overlays on the previous image.
/// </summary>
internal sealed class VmBackupRun(ArchiveStore store, GuestLocks locks, QemuTools tools, ProviderFds fds,
    DirectoryRepositoryOptions options, TimeProvider timeProvider)
{
    /// <summary>A volume's chunk list beside its image: <c>DEVICE.chunks</c> (format: <see cref="ChunkDigestList"/>).</summary>
    public const string ChunkDigestsSuffix = ".chunks";

    public async Task RunAsync(BackupSession session, BackupVmStart start, IAsyncStreamReader<BackupVmRequest> requests,
        IServerStreamWriter<BackupVmEvent> stream, CancellationToken cancellationToken)
    {
        IReadOnlyList<ValidatedVmVolume> volumes = BackupVmValidation.Validate(start);
        var sockets = new Dictionary<string, List<Socket>>(StringComparer.Ordinal);
        var files = new Dictionary<string, SafeFileHandle>(StringComparer.Ordinal);
        try
        {
            foreach (ValidatedVmVolume volume in volumes)
            {
                if (volume.File is not null)
                {
                    files[volume.Device] = await fds.ClaimSnapshotFileAsync(volume, cancellationToken);
                }
                else
                {
                    sockets[volume.Device] = await fds.ClaimNbdSocketsAsync(volume, cancellationToken);
                }
            }
            using IDisposable guestLock = await locks.AcquireAsync(session.GuestId, cancellationToken);
            Dictionary<string, StackedOn> bases = ChooseBases(session, volumes);
            StoreConfigurations(session, start);

            using var events = new BackupEventWriter(stream, timeProvider);
            var bandwidth = new BandwidthThrottle(start.BandwidthLimit?.BytesPerSecond ?? 0);
            // Every volume is opened and planned first, in the request's order (a FILE_HANDLE volume's extents arrive on
            // the request stream in that order); then up to ParallelVolumes copy at once, sharing the one bandwidth
            // limit. The first failure cancels the others.
            var opened = new List<(ValidatedVmVolume Volume, ISnapshotVolume Reader, List<PlannedExtent> Plan)>();
            var closed = new bool[volumes.Count];
            try
            {
                foreach (ValidatedVmVolume volume in volumes)
                {
                    (ISnapshotVolume reader, List<PlannedExtent> plan) = files.Remove(volume.Device, out SafeFileHandle? file)
                        ? await OpenFileAsync(volume, file, requests, events, cancellationToken)
                        : await OpenNbdAsync(volume, sockets[volume.Device], events, cancellationToken);
                    sockets.Remove(volume.Device);
                    opened.Add((volume, reader, plan));
                }
                var stored = new ManifestVolume[opened.Count];
                await Parallel.ForEachAsync(Enumerable.Range(0, opened.Count),
                    new ParallelOptions { MaxDegreeOfParallelism = options.ParallelVolumes, CancellationToken = cancellationToken },
                    async (i, token) =>
                    {
                        var (volume, reader, plan) = opened[i];
                        stored[i] = await BackupVolumeAsync(session, volume, bases.GetValueOrDefault(volume.Device), reader, plan, bandwidth,
                            events, token);
                        // Each volume's connections close as soon as it is stored, not when the last volume is.
                        closed[i] = true;
                        await reader.DisposeAsync();
                    });
                session.Volumes.AddRange(stored);
            }
            finally
            {
                for (int i = 0; i < opened.Count; i++)
                {
                    if (!closed[i])
                    {
                        await opened[i].Reader.DisposeAsync();
                    }
                }
            }
            WriteManifest(session, start, complete: false);
        }
        finally
        {
            foreach (Socket socket in sockets.Values.SelectMany(s => s))
            {
                socket.Dispose();
            }
            foreach (SafeFileHandle file in files.Values)
            {
                file.Dispose();
            }
        }
    }

    private static async Task<(ISnapshotVolume, List<PlannedExtent>)> OpenFileAsync(ValidatedVmVolume volume, SafeFileHandle file,
        IAsyncStreamReader<BackupVmRequest> requests, BackupEventWriter events, CancellationToken cancellationToken)
    {
        var reader = new FileSnapshotVolume(volume.Device, file, volume.SizeBytes, events);
        try
        {
            return (reader, await FileExtentPlan.ReadAsync(requests, volume, cancellationToken));
        }
        catch
        {
            await reader.DisposeAsync();
            throw;
        }
    }

    private async Task<(ISnapshotVolume, List<PlannedExtent>)> OpenNbdAsync(ValidatedVmVolume volume, List<Socket> sockets,
        BackupEventWriter events, CancellationToken cancellationToken)
    {
        string context = volume.IsIncremental ? volume.Nbd!.BitmapContext : NbdMetaContexts.BaseAllocation;
        NbdSource source = await ConnectAsync(volume, sockets, context, cancellationToken);
        try
        {
            if (source.Export.Size != volume.SizeBytes)
            {
                throw ContractErrors.InvalidArgument(
                    $"device {volume.Device} was declared with {volume.SizeBytes} bytes but its NBD export has {source.Export.Size}");
            }
            List<PlannedExtent> plan;
            try
            {
                plan = volume.IsIncremental
                    ? await ExtentMap.BuildAsync(source, volume.SizeBytes, ExtentMap.ClassifyDirty, ExtentAction.Copy, cancellationToken)
                    : await ExtentMap.BuildAsync(source, volume.SizeBytes, ExtentMap.ClassifyAllocation, ExtentAction.Copy, cancellationToken);
            }
            catch (Exception e) when (SnapshotErrors.IsNbdFailure(e) && !cancellationToken.IsCancellationRequested)
            {
                throw SnapshotErrors.Broken(volume.Device, "mapping it with block status", e);
            }
            return (await NbdSnapshotVolume.CreateAsync(volume.Device, source, events, cancellationToken), plan);
        }
        catch
        {
            await source.DisposeAsync();
            throw;
        }
    }

    /// <summary>REUSE stacks on the device's last successful backup; without one (or with another size) it cannot.</summary>
    private Dictionary<string, StackedOn> ChooseBases(BackupSession session, IReadOnlyList<ValidatedVmVolume> volumes)
    {
        var bases = new Dictionary<string, StackedOn>(StringComparer.Ordinal);
        foreach (ValidatedVmVolume volume in volumes.Where(v => v.IsIncremental))
        {
            var (archive, stored) = store.FindIncrementalBase(session.GuestId, volume.Device, volume.SizeBytes)
                ?? throw ProviderErrors.Create(ErrorReason.SizeMismatch,
                    $"device {volume.Device} is REUSE, but this repository has no previous backup of it with {volume.SizeBytes} bytes; "
                    + "the next backup must be NEW");
            bases[volume.Device] = new StackedOn(archive, stored);
        }
        return bases;
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
        catch (Exception e) when (ContractErrors.IsStorageFailure(e))
        {
            throw ContractErrors.FromStorage(e, "storing the guest configuration");
        }
    }

    private async Task<ManifestVolume> BackupVolumeAsync(BackupSession session, ValidatedVmVolume volume, StackedOn? stackOn, ISnapshotVolume source,
        List<PlannedExtent> plan, BandwidthThrottle bandwidth, BackupEventWriter events, CancellationToken cancellationToken)
    {
        string directory = store.DirectoryOf(session.Archive);
        string format = volume.IsIncremental ? ManifestVolume.FormatQcow2 : ManifestVolume.FormatRaw;
        string fileName = volume.Device + "." + format;
        VolumeCopyResult result;
        ChunkDigestList? digests = null;
        long storedRead = 0;
        ChunkDigestList? baseDigests = options.VolumeDigest ? LoadBaseDigests(volume, stackOn) : null;
        await using (IVolumeTarget target = await CreateTargetAsync(volume, stackOn, directory, fileName, cancellationToken))
        using (RawFileTarget? rawBase = OpenRawBase(volume, stackOn))
        {
            // The clean parts of dirty chunks come from the stored chain: straight from the base's file when it is a raw
            // full image (the overlay would only pass them through qemu-nbd), else through the new overlay, which
            // resolves the chain.
            using ChunkDigester? digester = options.VolumeDigest
                ? new ChunkDigester(plan, volume.SizeBytes, volume.IsIncremental, baseDigests, rawBase is null ? target.ReadAsync : rawBase.ReadAsync,
                    options.CopyRequestSize, options.CopyDepth)
                : null;
            var copier = new VolumeCopier(volume.Device, source, target, bandwidth, events, options.CopyRequestSize, options.CopyDepth, digester);
            result = await copier.CopyAsync(plan, cancellationToken);
            try
            {
                if (digester is not null)
                {
                    digests = await digester.FinishAsync(cancellationToken);
                    storedRead = digester.StoredBytesRead;
                    using var file = new MemoryStream();
                    digests.WriteTo(file);
                    AtomicFile.Write(Path.Join(directory, volume.Device + ChunkDigestsSuffix), file.GetBuffer().AsSpan(0, (int)file.Length));
                }
                await target.FinishAsync(cancellationToken);
            }
            catch (Exception e) when (ContractErrors.IsStorageFailure(e))
            {
                throw ContractErrors.FromStorage(e, $"finishing the image of {volume.Device}");
            }
        }

        if (digests is not null)
        {
            await events.ChunkDigestsAsync(volume.Device, digests, cancellationToken);
        }
        await events.CompletedAsync(new VolumeCompleted
        {
            DeviceName = volume.Device,
            BitmapMode = volume.BitmapMode,
            BytesRead = (ulong)result.BytesRead,
            BytesStored = (ulong)result.BytesStored,
            Digest = digests?.ToMessage(),
        }, cancellationToken);
        string digestNote = digests is null ? "" : $", read {storedRead} bytes of the stored chain for its chunk digests";
        await events.LogAsync(LogRecord.Types.Level.Info, stackOn is { } stackedOn
            ? $"{volume.Device}: incremental on {stackedOn.Archive.Name}, read {result.BytesRead} bytes, stored {result.BytesStored}{digestNote}"
            : $"{volume.Device}: full, read {result.BytesRead} of {volume.SizeBytes} bytes, stored {result.BytesStored}",
            cancellationToken);
        return new ManifestVolume
        {
            Device = volume.Device,
            SizeBytes = volume.SizeBytes,
            File = fileName,
            Format = format,
            Parent = stackOn?.Archive.Name,
            BitmapMode = volume.ModeName,
            BytesRead = result.BytesRead,
            BytesStored = result.BytesStored,
            Digest = digests?.Value,
            ChunkDigestsFile = digests is null ? null : volume.Device + ChunkDigestsSuffix,
        };
    }

    /// <summary>
    /// The base's chunk list, so the incremental hashes only the chunks it touches; null (clean chunks are then read
    /// from the chain) when the base predates chunk lists or its list is unreadable or of another size.
    /// </summary>
    private ChunkDigestList? LoadBaseDigests(ValidatedVmVolume volume, StackedOn? stackOn)
    {
        if (stackOn?.Volume.ChunkDigestsFile is not { } name)
        {
            return null;
        }
        try
        {
            ChunkDigestList list = ChunkDigestList.ReadFile(store.FileIn(stackOn.Archive, name));
            return list.VolumeSize == volume.SizeBytes ? list : null;
        }
        catch (Exception e) when (e is InvalidDataException or EndOfStreamException || ContractErrors.IsStorageFailure(e))
        {
            return null;
        }
    }

    private RawFileTarget? OpenRawBase(ValidatedVmVolume volume, StackedOn? stackOn)
    {
        if (!options.VolumeDigest || stackOn is null || stackOn.Volume.Format != ManifestVolume.FormatRaw)
        {
            return null;
        }
        try
        {
            return RawFileTarget.OpenReadOnly(store.FileIn(stackOn.Archive, stackOn.Volume.File), volume.SizeBytes);
        }
        catch (Exception e) when (ContractErrors.IsStorageFailure(e))
        {
            throw ContractErrors.FromStorage(e, $"opening the base image of {volume.Device} for its chunk digests");
        }
    }

    private async Task<NbdSource> ConnectAsync(ValidatedVmVolume volume, List<Socket> sockets, string context,
        CancellationToken cancellationToken)
    {
        try
        {
            return await NbdSource.ConnectAsync(sockets, volume.Nbd!.ExportName, context, requireContext: volume.IsIncremental,
                options.CopyRequestSize, options.CopyDepth, cancellationToken);
        }
        catch (NbdHandshakeException e)
        {
            throw ContractErrors.InvalidArgument($"device {volume.Device}: the NBD handshake on the passed socket failed: {e.Message}");
        }
        catch (Exception e) when (SnapshotErrors.IsNbdFailure(e) && !cancellationToken.IsCancellationRequested)
        {
            throw SnapshotErrors.Broken(volume.Device, "connecting to its export", e);
        }
    }

    private async Task<IVolumeTarget> CreateTargetAsync(ValidatedVmVolume volume, StackedOn? stackOn, string directory, string fileName,
        CancellationToken cancellationToken)
    {
        try
        {
            if (stackOn is null)
            {
                return RawFileTarget.Create(Path.Join(directory, fileName), volume.SizeBytes);
            }
            return await OverlayTarget.CreateAsync(tools, directory, fileName, ArchiveStore.RelativeImagePath(stackOn.Archive, stackOn.Volume),
                stackOn.Volume.Format, volume.SizeBytes, options.CopyRequestSize, options.CopyDepth, store.GuestDirectory(stackOn.Archive.GuestId),
                cancellationToken);
        }
        catch (Exception e) when (ContractErrors.IsStorageFailure(e))
        {
            throw ContractErrors.FromStorage(e, $"creating the image of {volume.Device}");
        }
    }

    private void WriteManifest(BackupSession session, BackupVmStart start, bool complete)
    {
        ArchiveManifest manifest = store.TryReadManifest(session.Archive)
            ?? throw ContractErrors.FromStorage(new IOException("the archive's manifest disappeared"), "updating the manifest");
        manifest.Complete = complete;
        manifest.HasFirewallConfig = start.HasFirewallConfig;
        manifest.Consistency = start.Consistency.ToString();
        manifest.Volumes.Clear();
        manifest.Volumes.AddRange(session.Volumes);
        store.WriteManifest(session.Archive, manifest);
    }
}
