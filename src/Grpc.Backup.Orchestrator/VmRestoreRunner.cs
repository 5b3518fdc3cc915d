using System.Diagnostics;
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

        Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(options.TargetDirectory))!);
        Directory.CreateDirectory(options.TargetDirectory);
        string restoreId = Guid.NewGuid().ToString();
        var disks = new Dictionary<string, string>(StringComparer.Ordinal);
        try
        {
            var init = await provider.Restore.RestoreVmInitAsync(new RestoreVmInitRequest { RestoreId = restoreId, ArchiveName = archiveName },
                cancellationToken: cancellationToken);
            ValidateVolumes(init.Volumes);
            foreach (VolumeSize volume in init.Volumes)
            {
                disks[volume.DeviceName] = await RestoreVolumeAsync(restoreId, archiveName, volume, options, cancellationToken);
            }
        }
        finally
        {
            await provider.Restore.RestoreVmCleanupAsync(new RestoreVmCleanupRequest { RestoreId = restoreId, ArchiveName = archiveName },
                cancellationToken: CancellationToken.None);
        }
        foreach (VmDisk excluded in ExcludedDisks(guestConfig, disks, options))
        {
            disks[excluded.DeviceName] = await CreateEmptyDiskAsync(excluded, options, cancellationToken);
        }
        await File.WriteAllBytesAsync(Path.Combine(options.TargetDirectory, "guest.conf"), guestConfig, cancellationToken);
        if (firewall.Present)
        {
            await File.WriteAllBytesAsync(Path.Combine(options.TargetDirectory, "firewall.conf"), firewall.FirewallConfig.ToByteArray(), cancellationToken);
        }
        return new VmRestoreResult(disks, guestConfig,
            // Typed, or a null byte[] would become an empty, non-null ReadOnlyMemory: "no firewall config" lost.
            firewall.Present ? (ReadOnlyMemory<byte>?)firewall.FirewallConfig.ToByteArray() : null);
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

    private static async Task<string> CreateEmptyDiskAsync(VmDisk disk, VmRestoreOptions options, CancellationToken cancellationToken)
    {
        string rawPath = Path.Combine(options.TargetDirectory, disk.DeviceName + ".raw");
        using (SafeFileHandle target = File.OpenHandle(rawPath, FileMode.CreateNew, FileAccess.ReadWrite))
        {
            RandomAccess.SetLength(target, (long)disk.SizeBytes!.Value);
        }
        if (options.TargetFormat == DiskFormat.Raw)
        {
            return rawPath;
        }
        string qcow2Path = Path.ChangeExtension(rawPath, ".qcow2");
        await QemuImg.RunAsync(["convert", "-f", "raw", "-O", "qcow2", rawPath, qcow2Path], cancellationToken);
        File.Delete(rawPath);
        return qcow2Path;
    }

    private async Task<string> RestoreVolumeAsync(string restoreId, string archiveName, VolumeSize volume, VmRestoreOptions options,
        CancellationToken cancellationToken)
    {
        string rawPath = Path.Combine(options.TargetDirectory, volume.DeviceName + ".raw");
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
            }, cancellationToken: cancellationToken);
            await using IBlockSource source = await OpenSourceAsync(response, volume, channel.Peer.UserId, cancellationToken);
            using var limiter = BlockCopier.CreateLimiter(options.BandwidthLimit);
            var stopwatch = Stopwatch.StartNew();
            long written;
            using (SafeFileHandle target = File.OpenHandle(rawPath, FileMode.CreateNew, FileAccess.ReadWrite, FileShare.None,
                FileOptions.None, (long)volume.SizeBytes))
            {
                written = await BlockCopier.CopyAsync(source, target, (long)volume.SizeBytes, limiter, null, cancellationToken);
            }
            LogRestored(logger, volume.DeviceName, (long)volume.SizeBytes, written, stopwatch.Elapsed.TotalSeconds);
        }
        catch
        {
            File.Delete(rawPath);
            throw;
        }
        finally
        {
            await provider.Restore.RestoreVmVolumeCleanupAsync(new RestoreVmVolumeCleanupRequest
            {
                RestoreId = restoreId,
                ArchiveName = archiveName,
                DeviceName = volume.DeviceName,
            }, cancellationToken: CancellationToken.None);
        }
        if (options.TargetFormat == DiskFormat.Raw)
        {
            return rawPath;
        }
        string qcow2Path = Path.ChangeExtension(rawPath, ".qcow2");
        await QemuImg.RunAsync(["convert", "-f", "raw", "-O", "qcow2", rawPath, qcow2Path], cancellationToken);
        File.Delete(rawPath);
        return qcow2Path;
    }

    private async Task<IBlockSource> OpenSourceAsync(RestoreVmVolumeInitResponse response, VolumeSize volume, uint providerUid,
        CancellationToken cancellationToken)
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
                return await OpenFileSourceAsync(passed.TakeFileHandle(), volume, providerUid: null, cancellationToken);
            case RestoreVmVolumeInitResponse.SourceOneofCase.Path:
                if (!Path.IsPathFullyQualified(response.Path))
                {
                    throw new BackupException($"{volume.DeviceName}: the provider's source path '{response.Path}' is not absolute");
                }
                // The file is opened by root: it must belong to the provider, or the provider could make the host copy
                // any host file (say /etc/shadow) into a guest disk.
                return await OpenFileSourceAsync(File.OpenHandle(response.Path, FileMode.Open, FileAccess.Read), volume, providerUid, cancellationToken);
            case RestoreVmVolumeInitResponse.SourceOneofCase.NbdUri:
                var uri = NbdUri.Parse(response.NbdUri);
                var nbd = await NbdClient.ConnectAsync(uri,
                    new NbdClientOptions { MetaContexts = { NbdMetaContexts.BaseAllocation }, RequireMetaContexts = false }, cancellationToken);
                return CheckNbdSize(nbd, volume);
            default:
                throw new BackupException($"{volume.DeviceName}: the provider gave no restore source");
        }
    }

    private static async Task<IBlockSource> OpenFileSourceAsync(SafeFileHandle handle, VolumeSize volume, uint? providerUid,
        CancellationToken cancellationToken)
    {
        try
        {
            PassedFileInfo info = PassedFileInfo.Get(handle);
            if (info.Kind is not (Transport.FdKind.File or Transport.FdKind.BlockDevice))
            {
                throw new BackupException($"{volume.DeviceName}: the restore source is not a regular file or block device");
            }
            if (providerUid is { } uid && uid != 0 && info.OwnerUid != uid)
            {
                throw new BackupException($"{volume.DeviceName}: the restore source belongs to uid {info.OwnerUid}, not to the provider (uid {uid})");
            }
            if (info.Kind == Transport.FdKind.File && info.Size != volume.SizeBytes)
            {
                throw new BackupException($"{volume.DeviceName}: the restore source has {info.Size} bytes; the archive says {volume.SizeBytes}");
            }
            await RestoreSourceValidator.ValidateAsync(handle, volume.DeviceName, cancellationToken);
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
}
