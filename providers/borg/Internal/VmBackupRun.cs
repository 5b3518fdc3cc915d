using System.Net.Sockets;
using System.Text.Json;
using Grpc.Backup.Nbd;
using Grpc.Backup.Protocol;
using Grpc.Backup.Protocol.V1;
using Grpc.Backup.Provider;
using Grpc.Core;
using Microsoft.Win32.SafeHandles;

namespace Grpc.Backup.Providers.Borg.Internal;

/// <summary>
/// One BackupVm call: claims every passed fd at once (claims expire), takes the repository lock, picks the previous
/// archive of each REUSE volume, and streams one tar into <c>borg import-tar</c>: guest.conf, firewall.conf, then
/// each volume as <c>&lt;device&gt;.raw</c>, a whole disk image (<see cref="VolumeStreamer"/>). The archive is written
/// as NAME.partial; BackupCleanup(success) renames it.
/// </summary>
internal sealed class VmBackupRun(BorgRepository repository, RepositoryLock repositoryLock, Catalog catalog, BorgCli borg,
    ProviderFds fds, TimeProvider timeProvider)
{
    private const int MaxConfigBytes = 64 * 1024;

    public async Task RunAsync(BackupSession session, BackupVmStart start, IAsyncStreamReader<BackupVmRequest> requests,
        IServerStreamWriter<BackupVmEvent> responses, CancellationToken cancellationToken)
    {
        IReadOnlyList<ValidatedVmVolume> volumes = BackupVmValidation.Validate(start);
        if (start.GuestConfig.Length > MaxConfigBytes || start.FirewallConfig.Length > MaxConfigBytes)
        {
            throw ContractErrors.InvalidArgument($"guest and firewall configurations are limited to {MaxConfigBytes} bytes each");
        }
        var sockets = new Dictionary<string, List<Socket>>(StringComparer.Ordinal);
        var files = new Dictionary<string, SafeFileHandle>(StringComparer.Ordinal);
        var sources = new Dictionary<string, ISnapshotVolume>(StringComparer.Ordinal);
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
            using var events = new BackupEventWriter(responses, timeProvider);
            // Every volume's source is opened now, not when its turn in the stream comes: QEMU drops an NBD connection
            // whose handshake is not done within 10 seconds (the CVE-2024-7409 fix), and the volumes before it can
            // take minutes.
            foreach (ValidatedVmVolume volume in volumes)
            {
                sources[volume.Device] = files.Remove(volume.Device, out SafeFileHandle? file)
                    ? new FileSnapshotVolume(volume.Device, file, volume.SizeBytes, events)
                    : await OpenNbdAsync(volume, sockets[volume.Device], events, cancellationToken);
                sockets.Remove(volume.Device);
            }
            using IDisposable held = await repositoryLock.AcquireAsync(cancellationToken);
            Dictionary<string, IncrementalBase> bases = await ChooseBasesAsync(session, start, cancellationToken);
            ArchiveMetadata metadata = MetadataFor(session, start, volumes, bases);

            var bandwidth = new BandwidthThrottle(start.BandwidthLimit?.BytesPerSecond ?? 0);
            var bytesRead = new Dictionary<string, long>(StringComparer.Ordinal);
            var digests = new Dictionary<string, ChunkDigestList>(StringComparer.Ordinal);
            JsonElement stats;
            await using (BorgProcess import = repository.StartImportTar(session.Archive.PartialBorgName, metadata))
            {
                try
                {
                    Stream tar = import.StandardInput;
                    await WriteMemberAsync(tar, "guest.conf", start.GuestConfig.ToByteArray(), metadata.BackupTime, cancellationToken);
                    if (start.HasFirewallConfig)
                    {
                        await WriteMemberAsync(tar, "firewall.conf", start.FirewallConfig.ToByteArray(), metadata.BackupTime, cancellationToken);
                    }
                    foreach (VmVolume volume in start.Volumes)
                    {
                        (bytesRead[volume.DeviceName], digests[volume.DeviceName]) = await StreamVolumeAsync(volume, sources[volume.DeviceName],
                            bases.GetValueOrDefault(volume.DeviceName), requests, tar, metadata.BackupTime, bandwidth, events, cancellationToken);
                    }
                    await tar.WriteAsync(TarHeader.EndOfArchive(), cancellationToken);
                    await tar.FlushAsync(cancellationToken);
                    tar.Close();
                    using JsonDocument result = JsonDocument.Parse(await import.ReadOutputAsync(cancellationToken));
                    stats = result.RootElement.GetProperty("archive").GetProperty("stats").Clone();
                }
                catch (IOException e) when (!cancellationToken.IsCancellationRequested)
                {
                    // borg stopped reading: its own error says why.
                    await import.WaitAsync(cancellationToken);
                    throw new BorgException($"borg import-tar stopped reading its input: {e.Message}", 2, null);
                }
                catch (BorgException e)
                {
                    throw BorgErrors.From(e, "storing the backup");
                }
            }

            // With one volume, what the archive added is that volume's (the configurations are a few hundred bytes):
            // borg is asked per member only when there are several.
            Dictionary<string, long> storedPerMember = metadata.Volumes.Count == 1
                ? new() { [metadata.Volumes[0].MemberName] = stats.GetProperty("deduplicated_size").GetInt64() }
                : await StoredPerMemberAsync(session.Archive.PartialBorgName, cancellationToken);
            foreach (VolumeMetadata volume in metadata.Volumes)
            {
                await events.ChunkDigestsAsync(volume.Device, digests[volume.Device], cancellationToken);
                await events.CompletedAsync(new VolumeCompleted
                {
                    DeviceName = volume.Device,
                    BitmapMode = start.Volumes.Single(v => v.DeviceName == volume.Device).BitmapMode,
                    BytesRead = (ulong)bytesRead[volume.Device],
                    BytesStored = (ulong)storedPerMember.GetValueOrDefault(volume.MemberName),
                    Digest = digests[volume.Device].ToMessage(),
                }, cancellationToken);
            }
            var entry = new CatalogEntry
            {
                Metadata = metadata,
                Notes = session.Notes,
                OriginalSize = metadata.Volumes.Sum(v => v.SizeBytes),
                CompressedSize = stats.GetProperty("compressed_size").GetInt64(),
                DeduplicatedSize = stats.GetProperty("deduplicated_size").GetInt64(),
                BytesRead = bytesRead,
            };
            await events.LogAsync(LogRecord.Types.Level.Info,
                $"borg archive {session.Archive.PartialBorgName}: {entry.OriginalSize} bytes of disks, {entry.CompressedSize} compressed, "
                + $"{entry.DeduplicatedSize} new in the repository", cancellationToken);
            session.Stored = entry;
            catalog.Write(session.Archive, entry);
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
            foreach (ISnapshotVolume source in sources.Values)
            {
                await source.DisposeAsync();
            }
        }
    }

    /// <summary>REUSE needs the device's last successful archive, still in the repository, with the same size.</summary>
    private async Task<Dictionary<string, IncrementalBase>> ChooseBasesAsync(BackupSession session, BackupVmStart start,
        CancellationToken cancellationToken)
    {
        var bases = new Dictionary<string, IncrementalBase>(StringComparer.Ordinal);
        if (!start.Volumes.Any(v => v.BitmapMode == BitmapMode.Reuse))
        {
            return bases;
        }
        IncrementalState state = catalog.ReadIncremental(session.GuestId);
        Dictionary<string, DateTimeOffset> listing = await ListAsync(cancellationToken);
        foreach (VmVolume volume in start.Volumes.Where(v => v.BitmapMode == BitmapMode.Reuse))
        {
            if (!state.Devices.TryGetValue(volume.DeviceName, out IncrementalBase? last) || last.SizeBytes != (long)volume.SizeBytes
                || !listing.ContainsKey(last.BorgName))
            {
                throw ProviderErrors.Create(ErrorReason.SizeMismatch,
                    $"device {volume.DeviceName} is REUSE, but the repository has no previous backup of it with {volume.SizeBytes} bytes; "
                    + "the next backup must be NEW");
            }
            bases[volume.DeviceName] = last;
        }
        return bases;
    }

    private async Task<Dictionary<string, DateTimeOffset>> ListAsync(CancellationToken cancellationToken)
    {
        try
        {
            return await repository.ListAsync(cancellationToken);
        }
        catch (BorgException e)
        {
            throw BorgErrors.From(e, "listing the repository");
        }
    }

    private static ArchiveMetadata MetadataFor(BackupSession session, BackupVmStart start, IReadOnlyList<ValidatedVmVolume> volumes,
        Dictionary<string, IncrementalBase> bases) => new()
    {
        BackupId = session.BackupId,
        GuestId = session.GuestId,
        GuestType = ArchiveMetadata.GuestTypeVm,
        GuestName = session.GuestName,
        BackupTime = session.Archive.Time,
        Consistency = start.Consistency.ToString(),
        GuestConfig = start.GuestConfig.ToByteArray(),
        FirewallConfig = start.HasFirewallConfig ? start.FirewallConfig.ToByteArray() : null,
        Volumes = volumes.Select(v => new VolumeMetadata
        {
            Device = v.Device,
            SizeBytes = v.SizeBytes,
            BitmapMode = v.ModeName,
            Base = bases.GetValueOrDefault(v.Device)?.BorgName,
        }).ToList(),
    };

    private static async Task WriteMemberAsync(Stream tar, string name, byte[] content, DateTimeOffset time, CancellationToken cancellationToken)
    {
        await tar.WriteAsync(TarHeader.For(name, content.Length, time), cancellationToken);
        await tar.WriteAsync(content, cancellationToken);
        await tar.WriteAsync(new byte[TarHeader.PaddingFor(content.Length)], cancellationToken);
    }

    private async Task<(long BytesRead, ChunkDigestList ChunkDigests)> StreamVolumeAsync(VmVolume volume, ISnapshotVolume source, IncrementalBase? previous,
        IAsyncStreamReader<BackupVmRequest> requests, Stream tar, DateTimeOffset time, BandwidthThrottle bandwidth, BackupEventWriter events,
        CancellationToken cancellationToken)
    {
        string device = volume.DeviceName;
        long size = (long)volume.SizeBytes;
        bool incremental = volume.BitmapMode == BitmapMode.Reuse;
        List<PlannedExtent> plan = source is NbdSnapshotVolume nbd
            ? await MapAsync(device, nbd.Source, size, incremental, cancellationToken)
            : await FileExtentPlan.ReadAsync(requests, device, size, incremental, FileExtentPlan.DefaultMaxExtents, cancellationToken);

        await tar.WriteAsync(TarHeader.For(device + ".raw", size, time), cancellationToken);
        BorgProcess? baseImage = previous is null ? null : repository.StartExtract(previous.BorgName, device + ".raw");
        try
        {
            var streamer = new VolumeStreamer(device, source, baseImage?.StandardOutput, tar, bandwidth, events,
                borg.Options.CopyRequestSize, borg.Options.CopyDepth);
            try
            {
                await streamer.StreamAsync(plan, cancellationToken);
            }
            catch (InvalidDataException e)
            {
                // The previous image did not have the expected length: its own error (if any) is the better message.
                if (baseImage is not null)
                {
                    await baseImage.WaitAsync(cancellationToken);
                }
                throw ContractErrors.ArchiveCorrupt(previous!.BorgName, e.Message);
            }
            if (baseImage is not null)
            {
                await baseImage.WaitAsync(cancellationToken);
            }
            await tar.WriteAsync(new byte[TarHeader.PaddingFor(size)], cancellationToken);
            await events.LogAsync(LogRecord.Types.Level.Info, previous is null
                ? $"{device}: full, read {streamer.BytesRead} of {size} bytes"
                : $"{device}: incremental on {previous.BorgName}, read {streamer.BytesRead} dirty bytes, {streamer.BytesFromBase} from the previous archive",
                cancellationToken);
            return (streamer.BytesRead, streamer.ChunkDigests!);
        }
        catch (BorgException e)
        {
            throw BorgErrors.From(e, $"reading the previous image of {device}");
        }
        finally
        {
            if (baseImage is not null)
            {
                await baseImage.DisposeAsync();
            }
        }
    }

    private async Task<ISnapshotVolume> OpenNbdAsync(ValidatedVmVolume volume, List<Socket> sockets, BackupEventWriter events,
        CancellationToken cancellationToken)
    {
        string device = volume.Device;
        long size = volume.SizeBytes;
        NbdSource source;
        try
        {
            source = await NbdSource.ConnectAsync(sockets, volume.Nbd!.ExportName,
                volume.IsIncremental ? volume.Nbd.BitmapContext : NbdMetaContexts.BaseAllocation, requireContext: volume.IsIncremental,
                borg.Options.CopyRequestSize, borg.Options.CopyDepth, cancellationToken);
        }
        catch (NbdHandshakeException e)
        {
            throw ContractErrors.InvalidArgument($"device {device}: the NBD handshake on the passed socket failed: {e.Message}");
        }
        catch (Exception e) when (SnapshotErrors.IsNbdFailure(e) && !cancellationToken.IsCancellationRequested)
        {
            throw SnapshotErrors.Broken(device, "connecting to its export", e);
        }
        if (source.Export.Size != size)
        {
            await source.DisposeAsync();
            throw ContractErrors.InvalidArgument($"device {device} was declared with {size} bytes but its NBD export has {source.Export.Size}");
        }
        return await NbdSnapshotVolume.CreateAsync(device, source, events, cancellationToken);
    }

    private static async Task<List<PlannedExtent>> MapAsync(string device, NbdSource source, long size, bool incremental,
        CancellationToken cancellationToken)
    {
        try
        {
            // Every block-status query comes before the first TRIM: a trimmed range cannot be queried any more.
            return incremental
                ? await ExtentMap.BuildAsync(source, size, ExtentMap.ClassifyDirty, ExtentAction.Copy, cancellationToken)
                : await ExtentMap.BuildAsync(source, size, ExtentMap.ClassifyAllocation, ExtentAction.Copy, cancellationToken);
        }
        catch (Exception e) when (SnapshotErrors.IsNbdFailure(e) && !cancellationToken.IsCancellationRequested)
        {
            throw SnapshotErrors.Broken(device, "mapping it with block status", e);
        }
    }

    /// <summary>What each member added to the repository (compressed, deduplicated), from borg's per-file accounting.</summary>
    private async Task<Dictionary<string, long>> StoredPerMemberAsync(string borgName, CancellationToken cancellationToken)
    {
        var stored = new Dictionary<string, long>(StringComparer.Ordinal);
        try
        {
            string lines = await borg.RunAsync(["list", "--bypass-lock", "--json-lines", "--format", "{path}{dcsize}", borg.Archive(borgName)],
                "list", cancellationToken);
            foreach (string line in lines.Split('\n', StringSplitOptions.RemoveEmptyEntries))
            {
                using var item = JsonDocument.Parse(line);
                stored[item.RootElement.GetProperty("path").GetString() ?? ""] = item.RootElement.GetProperty("dcsize").GetInt64();
            }
        }
        catch (Exception e) when (e is BorgException or JsonException or KeyNotFoundException)
        {
            // Only the per-volume figure is lost; the archive's totals come from import-tar itself.
        }
        return stored;
    }
}
