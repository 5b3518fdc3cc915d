using Grpc.Backup.Containers;
using Grpc.Backup.Orchestrator.Internal;

namespace Grpc.Backup.Orchestrator;

/// <summary>Listing a directory: names from <c>ls0</c> (NUL-separated), <c>lstatns</c> of each, <c>readlink</c> of each symlink.</summary>
public sealed partial class VmFileBrowser
{
    /// <summary>Stat calls sent in one guestfish process (joined with ":"; every argument is an absolute path, never ":" alone).</summary>
    private const int StatBatch = 200;

    /// <summary>
    /// The entries directly in <paramref name="path"/> on <paramref name="disk"/> of <paramref name="archiveName"/>
    /// (its first disk when null), sorted by name; or the one entry when it is not a directory. Owners are the guest's
    /// numeric ids (the guest's own user database is not read). Names and link targets are the guest's data.
    /// </summary>
    /// <exception cref="ArchivePathNotFoundException">The path is not there.</exception>
    public async Task<IReadOnlyList<ArchiveEntry>> ListAsync(string archiveName, string? disk, string path, CancellationToken cancellationToken)
    {
        var (fileSystem, relative) = await ResolveAsync(archiveName, disk, path, cancellationToken);
        if (fileSystem is null)
        {
            // The disk's root: its file systems, as directories.
            string device = disk ?? _archives.First(a => a.Source.ArchiveName == archiveName).Disks[0].DeviceName;
            return [.. _fileSystems.Where(f => f.Public.ArchiveName == archiveName && f.Public.DeviceName == device)
                .Select(f => new ArchiveEntry(f.Public.Name, ArchiveEntryKind.Directory, 0, (UnixFileMode)0b111_101_101, 0, 0, null, null, DateTimeOffset.UnixEpoch, null))];
        }
        string full = Full(fileSystem, relative);
        GuestStat self;
        try
        {
            self = (await StatAsync([full], cancellationToken))[0];
        }
        catch (BackupException)
        {
            throw new ArchivePathNotFoundException(DisplayPath(fileSystem, relative));
        }
        if (self.Kind != ArchiveEntryKind.Directory)
        {
            return [await EntryAsync(fileSystem, relative, full, self, cancellationToken)];
        }
        string[] names = await _appliance.ReadOutputAsync(["ls0", full, "-"], async output =>
        {
            using var text = new StreamReader(output, leaveOpen: true);
            return (await text.ReadToEndAsync(cancellationToken)).Split('\0', StringSplitOptions.RemoveEmptyEntries);
        }, cancellationToken);
        // A hostile file system can hold names no kernel would write; they are left out, never resolved.
        names = [.. names.Where(n => n is not ("." or "..") && !n.Contains('/', StringComparison.Ordinal)).Order(StringComparer.Ordinal)];
        var entries = new List<ArchiveEntry>(names.Length);
        for (int start = 0; start < names.Length; start += StatBatch)
        {
            string[] batch = names[start..Math.Min(names.Length, start + StatBatch)];
            List<GuestStat> stats = await StatAsync([.. batch.Select(n => full.TrimEnd('/') + "/" + n)], cancellationToken);
            for (int i = 0; i < batch.Length; i++)
            {
                string child = relative.Length == 0 ? batch[i] : relative + "/" + batch[i];
                entries.Add(await EntryAsync(fileSystem, child, Full(fileSystem, child), stats[i], cancellationToken));
            }
        }
        return entries;
    }

    private static string Full(MountedFileSystem fileSystem, string relative) => relative.Length == 0 ? fileSystem.MountPoint : fileSystem.MountPoint + "/" + relative;

    private async Task<List<GuestStat>> StatAsync(IReadOnlyList<string> paths, CancellationToken cancellationToken)
    {
        var command = new List<string>();
        foreach (string path in paths)
        {
            if (command.Count > 0)
            {
                command.Add(":");
                command.Add("-lstatns");
            }
            else
            {
                command.Add("lstatns");
            }
            command.Add(path);
        }
        List<GuestStat> stats = GuestStat.ParseAll(await _appliance.RunAsync(command, cancellationToken));
        if (stats.Count != paths.Count)
        {
            throw new BackupException($"the appliance returned {stats.Count} stat results for {paths.Count} paths");
        }
        return stats;
    }

    private async Task<ArchiveEntry> EntryAsync(MountedFileSystem fileSystem, string relative, string full, GuestStat stat, CancellationToken cancellationToken)
    {
        string? link = null;
        if (stat.Kind == ArchiveEntryKind.Symlink)
        {
            // Read, never followed: the target is the guest's text (readlink's output ends with one newline of its own).
            string output = await _appliance.RunAsync(["readlink", full], cancellationToken);
            link = output.EndsWith('\n') ? output[..^1] : output;
        }
        return new ArchiveEntry(DisplayPath(fileSystem, relative), stat.Kind, stat.Kind == ArchiveEntryKind.File ? stat.Size : 0, stat.Permissions,
            (int)stat.Uid, (int)stat.Gid, null, null, stat.ModificationTimeOffset, link);
    }
}
