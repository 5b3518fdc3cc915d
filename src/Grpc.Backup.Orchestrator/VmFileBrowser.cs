using Grpc.Backup.Orchestrator.Internal;
using Grpc.Backup.Protocol.V1;
using Microsoft.Extensions.Logging;

namespace Grpc.Backup.Orchestrator;

/// <summary>
/// A browsing session over the disks of one or more VM archives (<c>grpc-backup files</c>): each disk is the provider's
/// ordinary restore source, claimed as a restore claims it and served read-only through the host's NBD guard
/// (<see cref="Internal.LiveRestoreExport"/>) to one libguestfs appliance, which finds the file systems (partitions,
/// LVM) and mounts them read-only inside itself; the host kernel never mounts a guest file system. The appliance boots
/// once per session (about a minute under TCG); every listing and extraction after that is a command to it. Disposing
/// shuts it down and releases every restore source. See CONTRIBUTING.md, "How one VM file restore flows".
/// </summary>
public sealed partial class VmFileBrowser : IAsyncDisposable
{
    private readonly List<OpenedArchive> _archives;
    private readonly GuestfishAppliance _appliance;
    private readonly DirectoryInfo _directory;
    private readonly List<MountedFileSystem> _fileSystems;

    private VmFileBrowser(List<OpenedArchive> archives, GuestfishAppliance appliance, DirectoryInfo directory, List<MountedFileSystem> fileSystems)
    {
        _archives = archives;
        _appliance = appliance;
        _directory = directory;
        _fileSystems = fileSystems;
    }

    /// <summary>Every file system found on the archives' disks, in the order of the archives and their disks.</summary>
    public IReadOnlyList<VmFileSystem> FileSystems => [.. _fileSystems.Select(f => f.Public)];

    /// <summary>Claims every disk of every archive, boots the appliance on them and mounts what it finds.</summary>
    public static async Task<VmFileBrowser> OpenAsync(IReadOnlyList<VmFileSource> sources, ILogger logger, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(sources);
        ArgumentNullException.ThrowIfNull(logger);
        var archives = new List<OpenedArchive>();
        DirectoryInfo directory = Directory.CreateTempSubdirectory("grpc-backup-files-");
        File.SetUnixFileMode(directory.FullName, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        GuestfishAppliance? appliance = null;
        try
        {
            foreach (VmFileSource source in sources)
            {
                archives.Add(await OpenArchiveAsync(source, cancellationToken));
            }
            appliance = await GuestfishAppliance.StartAsync(directory.FullName, cancellationToken);
            foreach (OpenedDisk disk in archives.SelectMany(a => a.Disks))
            {
                // For protocol:nbd the "file name" is the export's name; QEMU's drive syntax gets only names of plain characters.
                if (!System.Text.RegularExpressions.Regex.IsMatch(disk.Export.ExportName, "^[A-Za-z0-9._-]*$"))
                {
                    throw new BackupException($"{disk.DeviceName}: the NBD export's name is not one the appliance can be given safely");
                }
                await appliance.RunAsync(["add-drive", disk.Export.ExportName, "protocol:nbd", "server:unix:" + disk.Export.SocketPath,
                    "readonly:true", "format:raw"], cancellationToken);
            }
            var started = System.Diagnostics.Stopwatch.StartNew();
            await appliance.RunAsync(["run"], cancellationToken);
            LogBooted(logger, archives.Sum(a => a.Disks.Count), started.Elapsed.TotalSeconds);
            List<MountedFileSystem> fileSystems = await MountAllAsync(appliance, archives, cancellationToken);
            return new VmFileBrowser(archives, appliance, directory, fileSystems);
        }
        catch
        {
            if (appliance is not null)
            {
                await appliance.DisposeAsync();
            }
            foreach (OpenedArchive archive in archives)
            {
                await archive.ReleaseAsync();
            }
            directory.Delete(recursive: true);
            throw;
        }
    }

    private static async Task<OpenedArchive> OpenArchiveAsync(VmFileSource source, CancellationToken cancellationToken)
    {
        // The mechanism must be a VM's: the configs it reads are not used.
        await VmArchiveHeader.ReadAsync(source.Provider, source.ArchiveName, cancellationToken);
        var archive = new OpenedArchive(source, Guid.NewGuid().ToString());
        try
        {
            var init = await source.Provider.Restore.RestoreVmInitAsync(new RestoreVmInitRequest { RestoreId = archive.RestoreId, ArchiveName = source.ArchiveName },
                cancellationToken: cancellationToken);
            RestoreVolumes.Validate(init.Volumes);
            foreach (VolumeSize volume in init.Volumes)
            {
                try
                {
                    using ClaimedRestoreSource claimed = await ClaimedRestoreSource.RequestAsync(source.Provider, archive.RestoreId, source.ArchiveName, volume,
                        bandwidthLimit: 0, allowBlockDevicePaths: false, runtimeDirectory: null, cancellationToken);
                    archive.Disks.Add(new OpenedDisk(volume.DeviceName, await LiveRestoreExport.StartAsync(claimed, volume,
                        NoReclaim, cancellationToken)));
                }
                catch
                {
                    await ProviderCleanup.IgnoringProviderErrorsAsync(() => RestoreVolumes.CleanupAsync(source.Provider, archive.RestoreId, source.ArchiveName,
                        volume.DeviceName));
                    throw;
                }
            }
            return archive;
        }
        catch
        {
            await archive.ReleaseAsync();
            throw;
        }
    }

    /// <summary>Shuts the appliance down, then closes every export and ends every restore at its provider.</summary>
    public async ValueTask DisposeAsync()
    {
        await _appliance.DisposeAsync();
        foreach (OpenedArchive archive in _archives)
        {
            await archive.ReleaseAsync();
        }
        try
        {
            _directory.Delete(recursive: true);
        }
        catch (IOException)
        {
            // Already gone.
        }
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "File restore: the appliance booted on {Disks} disk(s) in {Seconds:F1} s")]
    private static partial void LogBooted(ILogger logger, int disks, double seconds);

    private sealed record OpenedDisk(string DeviceName, LiveRestoreExport Export);

    private sealed class OpenedArchive(VmFileSource source, string restoreId)
    {
        public VmFileSource Source { get; } = source;
        public string RestoreId { get; } = restoreId;
        public List<OpenedDisk> Disks { get; } = [];

        public async Task ReleaseAsync()
        {
            foreach (OpenedDisk disk in Disks)
            {
                await disk.Export.DisposeAsync();
                await ProviderCleanup.IgnoringProviderErrorsAsync(() => RestoreVolumes.CleanupAsync(Source.Provider, RestoreId, Source.ArchiveName, disk.DeviceName));
            }
            Disks.Clear();
            await ProviderCleanup.IgnoringProviderErrorsAsync(() => Source.Provider.Restore.RestoreVmCleanupAsync(
                new RestoreVmCleanupRequest { RestoreId = RestoreId, ArchiveName = Source.ArchiveName }, cancellationToken: CancellationToken.None).ResponseAsync);
        }
    }

    /// <summary>A browsing session does not ask a provider for its source again: a lost export fails the command.</summary>
    private static Task<System.Net.Sockets.Socket> NoReclaim(CancellationToken cancellationToken) =>
        Task.FromException<System.Net.Sockets.Socket>(new IOException("the provider's restore export was lost; run the command again"));
}
