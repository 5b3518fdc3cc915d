using System.Globalization;
using System.Text.RegularExpressions;
using Grpc.Backup.Containers;
using Grpc.Backup.Orchestrator.Internal;
using Grpc.Backup.Protocol;

namespace Grpc.Backup.Orchestrator;

/// <summary>Finding the file systems (partitions, LVM) and mounting them read-only in the appliance; resolving a requested path.</summary>
public sealed partial class VmFileBrowser
{
    private static readonly Regex DiskDevice = new("^(/dev/sd[a-z]+)([0-9]*)$", RegexOptions.CultureInvariant);
    private static readonly Regex LogicalVolume = new("^/dev/([A-Za-z0-9+_.-]+)/([A-Za-z0-9+_.-]+)$", RegexOptions.CultureInvariant);

    private sealed record MountedFileSystem(VmFileSystem Public, string MountPoint);

    private static async Task<List<MountedFileSystem>> MountAllAsync(GuestfishAppliance appliance, List<OpenedArchive> archives, CancellationToken cancellationToken)
    {
        // The appliance names the drives /dev/sda, /dev/sdb, ... in the order they were added.
        string[] devices = Lines(await appliance.RunAsync(["list-devices"], cancellationToken));
        var drives = archives.SelectMany(a => a.Disks.Select(d => (Archive: a.Source.ArchiveName, d.DeviceName))).ToArray();
        if (devices.Length != drives.Length)
        {
            throw new BackupException($"the appliance sees {devices.Length} disks; {drives.Length} were added");
        }
        Dictionary<string, string> lvmDisks = await LogicalVolumeDisksAsync(appliance, cancellationToken);
        var found = new List<(int Drive, string Device, string Name, string Type)>();
        foreach (string line in Lines(await appliance.RunAsync(["list-filesystems"], cancellationToken)))
        {
            // "/dev/sda1: ext4": device names are the appliance's; the type comes from the guest's data.
            int colon = line.LastIndexOf(": ", StringComparison.Ordinal);
            if (colon <= 0)
            {
                continue;
            }
            string device = line[..colon];
            string type = ProviderText.Sanitize(line[(colon + 2)..], 32);
            if (DiskDevice.Match(device) is { Success: true } disk)
            {
                found.Add((Array.IndexOf(devices, disk.Groups[1].Value), device, disk.Groups[2].Value.Length == 0 ? "" : "part" + disk.Groups[2].Value, type));
            }
            else if (LogicalVolume.Match(device) is { Success: true } lv && lvmDisks.TryGetValue(device, out string? pv))
            {
                found.Add((Array.IndexOf(devices, pv), device, $"lvm-{lv.Groups[1].Value}-{lv.Groups[2].Value}", type));
            }
        }
        var mounted = new List<MountedFileSystem>();
        foreach (var fs in found.Where(f => f.Drive >= 0).OrderBy(f => f.Drive).ThenBy(f => f.Name, StringComparer.Ordinal))
        {
            string mountPoint = "/gb" + mounted.Count.ToString(CultureInfo.InvariantCulture);
            string? error = null;
            if (fs.Type is "unknown" or "swap")
            {
                error = $"no file system the appliance can read ({fs.Type})";
            }
            else
            {
                try
                {
                    await appliance.RunAsync(["mkmountpoint", mountPoint], cancellationToken);
                    await appliance.RunAsync(["mount-ro", fs.Device, mountPoint], cancellationToken);
                }
                catch (BackupException e)
                {
                    error = e.Message;
                }
            }
            mounted.Add(new MountedFileSystem(new VmFileSystem(drives[fs.Drive].Archive, drives[fs.Drive].DeviceName, fs.Name, fs.Type, error), mountPoint));
        }
        return mounted;
    }

    /// <summary>Each logical volume's disk (that of the first physical volume of its volume group).</summary>
    private static async Task<Dictionary<string, string>> LogicalVolumeDisksAsync(GuestfishAppliance appliance, CancellationToken cancellationToken)
    {
        var disks = new Dictionary<string, string>(StringComparer.Ordinal);
        string[] volumes = Lines(await appliance.RunAsync(["lvs"], cancellationToken));
        if (volumes.Length == 0)
        {
            return disks;
        }
        var pvByUuid = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (string pv in Lines(await appliance.RunAsync(["pvs"], cancellationToken)).Where(p => DiskDevice.IsMatch(p)))
        {
            pvByUuid[Lines(await appliance.RunAsync(["pvuuid", pv], cancellationToken)).FirstOrDefault() ?? ""] = DiskDevice.Match(pv).Groups[1].Value;
        }
        foreach (string lv in volumes)
        {
            if (LogicalVolume.Match(lv) is not { Success: true } match)
            {
                continue;
            }
            string[] uuids = Lines(await appliance.RunAsync(["vgpvuuids", match.Groups[1].Value], cancellationToken));
            if (uuids.Select(u => pvByUuid.GetValueOrDefault(u)).FirstOrDefault(d => d is not null) is { } disk)
            {
                disks[lv] = disk;
            }
        }
        return disks;
    }

    private static string[] Lines(string output) => output.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);

    /// <summary>
    /// The file system and the path in it that <paramref name="path"/> names on <paramref name="disk"/> (the archive's
    /// first disk when null). With several file systems on the disk, the first component names one and "" (the disk's
    /// root) is returned with no file system. No component may be "..", and no directory on the way may be a symlink.
    /// </summary>
    private async Task<(MountedFileSystem? FileSystem, string Path)> ResolveAsync(string archiveName, string? disk, string path, CancellationToken cancellationToken)
    {
        OpenedArchive archive = _archives.FirstOrDefault(a => a.Source.ArchiveName == archiveName)
            ?? throw new BackupException($"archive {archiveName} is not open in this session");
        string device = disk ?? archive.Disks[0].DeviceName;
        if (archive.Disks.All(d => d.DeviceName != device))
        {
            throw new BackupException($"archive {archiveName} has no disk {disk} (it has {string.Join(", ", archive.Disks.Select(d => d.DeviceName))})");
        }
        List<MountedFileSystem> onDisk = [.. _fileSystems.Where(f => f.Public.ArchiveName == archiveName && f.Public.DeviceName == device)];
        if (onDisk.Count == 0)
        {
            throw new BackupException($"{archiveName} {device}: the appliance found no file system on this disk");
        }
        string[] parts = path.Split('/', StringSplitOptions.RemoveEmptyEntries).Where(p => p != ".").ToArray();
        if (parts.Contains(".."))
        {
            throw new BackupException($"'{ProviderText.Sanitize(path)}': '..' is not allowed in a path");
        }
        MountedFileSystem fileSystem;
        if (onDisk.Count == 1)
        {
            fileSystem = onDisk[0];
        }
        else if (parts.Length == 0)
        {
            return (null, "");
        }
        else
        {
            fileSystem = onDisk.FirstOrDefault(f => f.Public.Name == parts[0])
                ?? throw new ArchivePathNotFoundException(ProviderText.Sanitize(parts[0]));
            parts = parts[1..];
        }
        if (fileSystem.Public.Error is { } error)
        {
            throw new BackupException($"{archiveName} {device}{(fileSystem.Public.Name.Length > 0 ? " " + fileSystem.Public.Name : "")}: {error}");
        }
        string relative = string.Join('/', parts);
        if (parts.Length > 1)
        {
            // realpath runs inside the appliance's chroot; a directory on the way that is a symlink resolves elsewhere.
            string parent = fileSystem.MountPoint + "/" + string.Join('/', parts[..^1]);
            string resolved;
            try
            {
                resolved = (await _appliance.RunAsync(["realpath", parent], cancellationToken)).TrimEnd('\n');
            }
            catch (BackupException)
            {
                throw new ArchivePathNotFoundException(ProviderText.Sanitize(path));
            }
            if (resolved != parent)
            {
                throw new BackupException($"'{ProviderText.Sanitize(path)}' passes through a symlink in the guest's file system; name the link's target instead");
            }
        }
        return (fileSystem, relative);
    }

    /// <summary>A path of <paramref name="fileSystem"/> as a listing or a tar names it (under the file system's name when the disk holds several).</summary>
    private string DisplayPath(MountedFileSystem fileSystem, string relative)
    {
        bool several = _fileSystems.Count(f => f.Public.ArchiveName == fileSystem.Public.ArchiveName && f.Public.DeviceName == fileSystem.Public.DeviceName) > 1;
        return several ? (relative.Length == 0 ? fileSystem.Public.Name : fileSystem.Public.Name + "/" + relative) : relative;
    }
}
