using System.Diagnostics;
using System.Net.Sockets;
using Google.Protobuf;
using Grpc.Backup.Host;
using Grpc.Backup.Nbd;
using Grpc.Backup.Orchestrator.Internal;
using Grpc.Backup.Orchestrator.Inventory;
using Grpc.Backup.Protocol;
using Grpc.Backup.Protocol.V1;
using Grpc.Backup.Transport;
using Microsoft.Extensions.Logging;
using Microsoft.Win32.SafeHandles;

namespace Grpc.Backup.Orchestrator;

/// <summary>
/// Restores a VM archive from a provider into new disk images: RestoreGetMechanism, the configs, RestoreVmInit, then
/// per device RestoreVmVolumeInit → copy as raw → RestoreVmVolumeCleanup, and RestoreVmCleanup; both cleanups run on
/// every path. Everything the provider hands over is treated as untrusted.
/// </summary>
public sealed partial class VmRestoreRunner(ProviderConnection provider, ILogger<VmRestoreRunner> logger)
{
    private const int MaxDevices = 64;

    public async Task<VmRestoreResult> RestoreAsync(string archiveName, VmRestoreOptions options, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(options);
        var phases = new PhaseTimings();
        PhaseTimings.Measurement init = phases.Measure("init");
        var mechanism = await provider.Restore.RestoreGetMechanismAsync(new RestoreGetMechanismRequest { ArchiveName = archiveName },
            cancellationToken: cancellationToken);
        if (mechanism.GuestType != GuestType.Vm || mechanism.MechanismCase != RestoreGetMechanismResponse.MechanismOneofCase.Vm
            || mechanism.Vm != VmRestoreMechanism.QemuImg)
        {
            throw new BackupException($"archive {archiveName} is a {mechanism.GuestType} archive with mechanism {mechanism.MechanismCase}; expected a VM restored with qemu-img");
        }
        byte[] guestConfig = (await provider.Restore.ArchiveGetGuestConfigAsync(new ArchiveGetGuestConfigRequest { ArchiveName = archiveName },
            cancellationToken: cancellationToken)).GuestConfig.ToByteArray();
        var firewall = await provider.Restore.ArchiveGetFirewallConfigAsync(new ArchiveGetFirewallConfigRequest { ArchiveName = archiveName },
            cancellationToken: cancellationToken);
        init.Dispose();

        using RestoreTarget target = RestoreTarget.Open(options.TargetDirectory);
        try
        {
            var disks = await RestoreVolumesAsync(archiveName, target, options, phases, cancellationToken);
            foreach (VmDisk excluded in ExcludedDisks(guestConfig, disks, options))
            {
                disks[excluded.DeviceName] = await CreateEmptyDiskAsync(excluded, target, options, cancellationToken);
            }
            await target.WriteFileAsync("guest.conf", guestConfig, cancellationToken);
            if (firewall.Present)
            {
                await target.WriteFileAsync("firewall.conf", firewall.FirewallConfig.Memory, cancellationToken);
            }
            LogPhases(logger, archiveName, phases.ToString());
            return new VmRestoreResult(disks, guestConfig,
                // Typed, or a null byte[] would become an empty, non-null ReadOnlyMemory: "no firewall config" lost.
                firewall.Present ? (ReadOnlyMemory<byte>?)firewall.FirewallConfig.ToByteArray() : null)
            {
                Phases = phases,
            };
        }
        catch
        {
            target.RemoveCreated();
            throw;
        }
    }

    private async Task<Dictionary<string, string>> RestoreVolumesAsync(string archiveName, RestoreTarget target, VmRestoreOptions options,
        PhaseTimings phases, CancellationToken cancellationToken)
    {
        string restoreId = Guid.NewGuid().ToString();
        var disks = new Dictionary<string, string>(StringComparer.Ordinal);
        try
        {
            RestoreVmInitResponse init;
            using (phases.Measure("init"))
            {
                init = await provider.Restore.RestoreVmInitAsync(new RestoreVmInitRequest { RestoreId = restoreId, ArchiveName = archiveName },
                    cancellationToken: cancellationToken);
            }
            ValidateVolumes(init.Volumes);
            CheckSpace(init.Volumes, target);
            foreach (VolumeSize volume in init.Volumes)
            {
                disks[volume.DeviceName] = await RestoreVolumeAsync(restoreId, archiveName, volume, target, options, phases, cancellationToken);
            }
        }
        finally
        {
            await provider.Restore.RestoreVmCleanupAsync(new RestoreVmCleanupRequest { RestoreId = restoreId, ArchiveName = archiveName },
                cancellationToken: CancellationToken.None);
        }
        return disks;
    }

    /// <summary>
    /// The declared sizes come from the provider (or a tampered repository): a restore writes sparse, but a disk that
    /// could not be filled on this file system is refused before anything is copied, so no archive can make the host
    /// fill its disk by declaring a size it never wrote.
    /// </summary>
    private static void CheckSpace(Google.Protobuf.Collections.RepeatedField<VolumeSize> volumes, RestoreTarget target)
    {
        ulong total = volumes.Aggregate(0UL, (sum, v) => sum + v.SizeBytes);
        long available = target.AvailableBytes;
        if (total > (ulong)available)
        {
            throw new BackupException($"the archive declares {total} bytes of disks but the restore target's file system has only {available} bytes free; "
                + "restore to a larger file system");
        }
    }

    /// <summary>
    /// The disks the archived config marks <c>backup=no</c> that the archive does not hold, when they are to be recreated.
    /// The config came back from the provider, so it is parsed as untrusted input (one that is not an inventory config
    /// names no disk to recreate); an excluded disk without a recorded size cannot be recreated and fails the restore
    /// rather than silently going missing.
    /// </summary>
    private List<VmDisk> ExcludedDisks(byte[] guestConfig, Dictionary<string, string> restored, VmRestoreOptions options)
    {
        if (options.ExcludedDisks == ExcludedDiskRestore.LeaveOut)
        {
            return [];
        }
        VmGuest guest;
        try
        {
            guest = GuestInventory.ParseVm("archived-guest.conf", guestConfig);
        }
        catch (ConfigException e)
        {
            // Not an inventory config (another host's format, or none): it names no excluded disk the host could recreate.
            LogUnreadableConfig(logger, e.Message);
            return [];
        }
        var excluded = guest.Disks.Where(d => !d.Backup && !restored.ContainsKey(d.DeviceName)).ToList();
        foreach (VmDisk disk in excluded)
        {
            if (disk.SizeBytes is null)
            {
                throw new BackupException($"disk {disk.DeviceName} was excluded from backup and its config line records no size=; "
                    + "it cannot be recreated empty (restore with ExcludedDisks = LeaveOut, or record its size)");
            }
            LogRecreated(logger, disk.DeviceName, (long)disk.SizeBytes.Value);
        }
        return excluded;
    }

    private static async Task<string> CreateEmptyDiskAsync(VmDisk disk, RestoreTarget target, VmRestoreOptions options,
        CancellationToken cancellationToken)
    {
        string rawName = disk.DeviceName + ".raw";
        using (SafeFileHandle file = target.CreateFile(rawName))
        {
            RandomAccess.SetLength(file, (long)disk.SizeBytes!.Value);
        }
        return await ConvertIfAskedAsync(rawName, target, options, cancellationToken);
    }

    private async Task<string> RestoreVolumeAsync(string restoreId, string archiveName, VolumeSize volume, RestoreTarget target,
        VmRestoreOptions options, PhaseTimings phases, CancellationToken cancellationToken)
    {
        string rawName = volume.DeviceName + ".raw";
        PhaseTimings.Measurement copy = phases.Measure("copy");
        try
        {
            FdChannel channel = await provider.GetFdChannelAsync(cancellationToken);
            var response = await provider.Restore.RestoreVmVolumeInitAsync(new RestoreVmVolumeInitRequest
            {
                RestoreId = restoreId,
                ArchiveName = archiveName,
                DeviceName = volume.DeviceName,
                FdChannelId = ByteString.CopyFrom(channel.ChannelId.ToByteArray()),
                BandwidthLimit = new BandwidthLimit { BytesPerSecond = options.BandwidthLimit },
            }, deadline: ProviderDeadlines.FromNow(ProviderDeadlines.Preparation), cancellationToken: cancellationToken);
            await using IBlockSource source = await OpenSourceAsync(response, volume, channel.Peer.UserId, options, cancellationToken);
            var stopwatch = Stopwatch.StartNew();
            long written;
            // Every chunk read restarts the watchdog; a source that stops answering cancels the copy (its reads would
            // otherwise wait forever).
            using var watchdog = new BackupWatchdog(options.ProviderInactivityTimeout, fleecingDirectory: null, fleecingReserve: 0,
                cancellationToken, "restore");
            // Never preallocated: the file is sparse and only data that is not zero gets written.
            using (SafeFileHandle file = target.CreateFile(rawName))
            {
                try
                {
                    written = await BlockCopier.CopyAsync(source, file, (long)volume.SizeBytes, new BandwidthThrottle(options.BandwidthLimit),
                        _ => watchdog.Kick(), watchdog.Token);
                }
                catch (OperationCanceledException) when (watchdog.Failure is { } failure)
                {
                    throw new BackupException($"{volume.DeviceName}: {failure.Message}");
                }
            }
            LogRestored(logger, volume.DeviceName, (long)volume.SizeBytes, written, stopwatch.Elapsed.TotalSeconds);
        }
        finally
        {
            await provider.Restore.RestoreVmVolumeCleanupAsync(new RestoreVmVolumeCleanupRequest
            {
                RestoreId = restoreId,
                ArchiveName = archiveName,
                DeviceName = volume.DeviceName,
            }, cancellationToken: CancellationToken.None);
            copy.Dispose();
        }
        using (phases.Measure("convert"))
        {
            return await ConvertIfAskedAsync(rawName, target, options, cancellationToken);
        }
    }

    /// <summary>
    /// The restored raw file, or a qcow2 made from it: the qcow2 name is created exclusively first (so qemu-img never
    /// overwrites a file that existed), the raw one is read with its format forced (never probed), and both are
    /// reached through the target directory's fd.
    /// </summary>
    private static async Task<string> ConvertIfAskedAsync(string rawName, RestoreTarget target, VmRestoreOptions options,
        CancellationToken cancellationToken)
    {
        if (options.TargetFormat == DiskFormat.Raw)
        {
            return target.PathOf(rawName);
        }
        string qcow2Name = Path.ChangeExtension(rawName, ".qcow2");
        target.CreateFile(qcow2Name).Dispose();
        await QemuImg.RunAsync(["convert", "-f", "raw", "-O", "qcow2", target.PinnedPathOf(rawName), target.PinnedPathOf(qcow2Name)],
            cancellationToken);
        target.Delete(rawName);
        return target.PathOf(qcow2Name);
    }

    private async Task<IBlockSource> OpenSourceAsync(RestoreVmVolumeInitResponse response, VolumeSize volume, uint providerUid,
        VmRestoreOptions options, CancellationToken cancellationToken)
    {
        switch (response.SourceCase)
        {
            case RestoreVmVolumeInitResponse.SourceOneofCase.Fd:
                PassedFd passed = await provider.ClaimFdAsync(response.Fd, cancellationToken);
                if (passed.Kind == Transport.FdKind.NbdSocket)
                {
                    var client = await NbdClient.ConnectAsync(passed.TakeSocket(), response.NbdExportName,
                        new NbdClientOptions { MetaContexts = { NbdMetaContexts.BaseAllocation }, RequireMetaContexts = false }, cancellationToken);
                    return CheckNbdSize(client, volume);
                }
                return OpenFileSource(passed.TakeFileHandle(), volume);
            case RestoreVmVolumeInitResponse.SourceOneofCase.Path:
                // Opened by root: it must belong to the provider, or the provider could make the host copy any host file
                // (say /etc/shadow) into a guest disk; and it is judged before it is opened for reading (a FIFO would block).
                return OpenFileSource(UntrustedPath.OpenFile(volume.DeviceName, response.Path, providerUid, options.AllowBlockDevicePaths), volume);
            case RestoreVmVolumeInitResponse.SourceOneofCase.NbdUri:
                if (!NbdUri.TryParse(response.NbdUri, out NbdUri? uri))
                {
                    throw new BackupException($"{volume.DeviceName}: the provider's NBD URI is not nbd+unix:///EXPORT?socket=PATH");
                }
                // Root connects: only to the provider's own socket, never to another service's (QEMU's, another provider's).
                Socket socket = await UntrustedPath.ConnectProviderSocketAsync(volume.DeviceName, uri.SocketPath, providerUid,
                    options.ProviderRuntimeDirectory, cancellationToken);
                var nbd = await NbdClient.ConnectAsync(socket, uri.ExportName,
                    new NbdClientOptions { MetaContexts = { NbdMetaContexts.BaseAllocation }, RequireMetaContexts = false }, cancellationToken);
                return CheckNbdSize(nbd, volume);
            default:
                throw new BackupException($"{volume.DeviceName}: the provider gave no restore source");
        }
    }

    /// <summary>
    /// A file or block device read as raw data, whatever it contains: the host never probes its format (data that
    /// happens to begin with a qcow2 header is a guest's data, and it restores byte-exact).
    /// </summary>
    private static FileBlockSource OpenFileSource(SafeFileHandle handle, VolumeSize volume)
    {
        try
        {
            PassedFileInfo info = PassedFileInfo.Get(handle);
            if (info.Kind is not (Transport.FdKind.File or Transport.FdKind.BlockDevice))
            {
                throw new BackupException($"{volume.DeviceName}: the restore source is not a regular file or block device");
            }
            if (info.Kind == Transport.FdKind.File && info.Size != volume.SizeBytes)
            {
                throw new BackupException($"{volume.DeviceName}: the restore source has {info.Size} bytes; the archive says {volume.SizeBytes}");
            }
            return new FileBlockSource(handle);
        }
        catch
        {
            handle.Dispose();
            throw;
        }
    }

    private static NbdBlockSource CheckNbdSize(NbdClient client, VolumeSize volume)
    {
        if (client.Export.Size != (long)volume.SizeBytes)
        {
            client.Dispose();
            throw new BackupException($"{volume.DeviceName}: the provider's NBD export has {client.Export.Size} bytes; the archive says {volume.SizeBytes}");
        }
        return new NbdBlockSource(client);
    }

    private static void ValidateVolumes(Google.Protobuf.Collections.RepeatedField<VolumeSize> volumes)
    {
        if (volumes.Count is 0 or > MaxDevices)
        {
            throw new BackupException($"the provider listed {volumes.Count} devices; expected 1 to {MaxDevices}");
        }
        var seen = new HashSet<string>(StringComparer.Ordinal);
        foreach (VolumeSize volume in volumes)
        {
            if (!DeviceName.IsValid(volume.DeviceName) || !seen.Add(volume.DeviceName))
            {
                throw new BackupException($"the provider listed an invalid or repeated device name '{volume.DeviceName}'");
            }
            if (volume.SizeBytes == 0 || volume.SizeBytes > (1UL << 50))
            {
                throw new BackupException($"{volume.DeviceName}: size {volume.SizeBytes} is not plausible");
            }
        }
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "Restored {Device}: {Size} bytes, {Written} written, in {Seconds:0.00} s")]
    private static partial void LogRestored(ILogger logger, string device, long size, long written, double seconds);

    [LoggerMessage(Level = LogLevel.Warning, Message = "The archived guest config is not an inventory config ({Reason}); no disk excluded from backup is recreated")]
    private static partial void LogUnreadableConfig(ILogger logger, string reason);

    [LoggerMessage(Level = LogLevel.Information, Message = "{Device} was excluded from backup: recreated empty with {Size} bytes")]
    private static partial void LogRecreated(ILogger logger, string device, long size);

    [LoggerMessage(Level = LogLevel.Information, Message = "Restored {Archive}; phases: {Phases}")]
    private static partial void LogPhases(ILogger logger, string archive, string phases);
}
