using System.Diagnostics;
using Grpc.Backup.Host;
using Grpc.Backup.Nbd;
using Grpc.Backup.Orchestrator.Internal;
using Grpc.Backup.Orchestrator.Inventory;
using Grpc.Backup.Protocol;
using Grpc.Backup.Protocol.V1;
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
    public async Task<VmRestoreResult> RestoreAsync(string archiveName, VmRestoreOptions options, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(options);
        var phases = new PhaseTimings();
        PhaseTimings.Measurement init = phases.Measure("init");
        VmArchiveHeader header = await VmArchiveHeader.ReadAsync(provider, archiveName, cancellationToken);
        byte[] guestConfig = header.GuestConfig;
        init.Dispose();

        using RestoreTarget target = RestoreTarget.Open(options.TargetDirectory);
        try
        {
            var disks = await RestoreVolumesAsync(archiveName, target, options, phases, cancellationToken);
            foreach (VmDisk excluded in ExcludedDisks(guestConfig, disks, options))
            {
                disks[excluded.DeviceName] = await CreateEmptyDiskAsync(excluded, target, options, cancellationToken);
            }
            await header.WriteAsync(target, cancellationToken);
            LogPhases(logger, archiveName, phases.ToString());
            return new VmRestoreResult(disks, guestConfig,
                // Typed, or a null byte[] would become an empty, non-null ReadOnlyMemory: "no firewall config" lost.
                header.FirewallConfig is { } firewall ? (ReadOnlyMemory<byte>?)firewall : null)
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
            RestoreVolumes.Validate(init.Volumes);
            RestoreVolumes.CheckSpace(init.Volumes, target);
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
            await using IBlockSource source = await OpenSourceAsync(restoreId, archiveName, volume, options, cancellationToken);
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
            await RestoreVolumes.CleanupAsync(provider, restoreId, archiveName, volume.DeviceName);
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

    private async Task<IBlockSource> OpenSourceAsync(string restoreId, string archiveName, VolumeSize volume, VmRestoreOptions options,
        CancellationToken cancellationToken)
    {
        using ClaimedRestoreSource claimed = await ClaimedRestoreSource.RequestAsync(provider, restoreId, archiveName, volume,
            options.BandwidthLimit, options.AllowBlockDevicePaths, options.ProviderRuntimeDirectory, cancellationToken);
        if (claimed.IsFile)
        {
            return new FileBlockSource(claimed.TakeFile());
        }
        var client = await NbdClient.ConnectAsync(claimed.TakeNbdSocket(), claimed.ExportName,
            new NbdClientOptions { MetaContexts = { NbdMetaContexts.BaseAllocation }, RequireMetaContexts = false }, cancellationToken);
        try
        {
            ClaimedRestoreSource.CheckNbdSize(volume, client.Export.Size);
        }
        catch
        {
            client.Dispose();
            throw;
        }
        return new NbdBlockSource(client);
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
