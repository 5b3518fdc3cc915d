using System.Text.Json;
using Grpc.Backup.Protocol;
using Grpc.Backup.Provider;

namespace Grpc.Backup.Providers.Directory.Internal;

/// <summary>
/// The repository's layout on disk (see README.md): where each archive lives, how its name maps to a directory, and
/// reading and writing the JSON files. Every archive name from the wire goes through <see cref="Resolve"/>, which
/// admits only <c>guest_id/timestamp</c> and so can never name a path outside the repository.
/// </summary>
internal sealed class ArchiveStore(DirectoryRepositoryOptions options)
{
    public const string ManifestFileName = "manifest.json";
    public const string GuestConfigFileName = "guest.conf";
    public const string FirewallConfigFileName = "firewall.conf";
    public const string LogFileName = "backup.log";
    public const string IncrementalStateFileName = "incremental-state.json";

    /// <summary>Archives hold whole disks: only the provider's user may enter them.</summary>
    private const UnixFileMode PrivateDirectoryMode = UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute;

    public string Root => options.RepositoryPath;

    public string GuestDirectory(string guestId) => Path.Join(Root, guestId);

    public string DirectoryOf(ArchiveRef archive) => Path.Join(Root, archive.GuestId, archive.Timestamp);

    public string FileIn(ArchiveRef archive, string fileName) => Path.Join(DirectoryOf(archive), fileName);

    /// <summary>
    /// The archive an archive name from a request names. INVALID_ARGUMENT when the name breaks the protocol's rules,
    /// NOT_FOUND ARCHIVE_NOT_FOUND when it is valid but not of this provider's shape.
    /// </summary>
    public static ArchiveRef Resolve(string? name)
    {
        string? problem = ArchiveName.Check(name);
        if (problem is not null)
        {
            throw ContractErrors.InvalidArgument(problem);
        }
        return TryParse(name!) ?? throw ContractErrors.ArchiveNotFound(name!);
    }

    /// <summary>The archive <paramref name="name"/> names, or null when it is not <c>guest_id/yyyyMMddTHHmmssZ</c>.</summary>
    public static ArchiveRef? TryParse(string? name)
    {
        if (name is null)
        {
            return null;
        }
        int slash = name.IndexOf('/', StringComparison.Ordinal);
        if (slash < 0)
        {
            return null;
        }
        string guestId = name[..slash];
        string timestamp = name[(slash + 1)..];
        return ProtocolNames.IsValidGuestId(guestId) && ArchiveTimestamp.TryParse(timestamp, out _)
            ? new ArchiveRef(guestId, timestamp)
            : null;
    }

    /// <summary>The manifest of <paramref name="archive"/>, or null when there is none or it cannot be trusted.</summary>
    public ArchiveManifest? TryReadManifest(ArchiveRef archive)
    {
        if (IsSymlink(GuestDirectory(archive.GuestId)) || IsSymlink(DirectoryOf(archive)))
        {
            // The provider never creates links; one planted here could lead outside the repository.
            return null;
        }
        byte[] bytes;
        try
        {
            bytes = File.ReadAllBytes(FileIn(archive, ManifestFileName));
        }
        catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException)
        {
            return null;
        }
        ArchiveManifest? manifest;
        try
        {
            manifest = JsonSerializer.Deserialize(bytes, ManifestJson.Default.ArchiveManifest);
        }
        catch (JsonException)
        {
            return null;
        }
        return manifest is not null && IsConsistent(archive, manifest) ? manifest : null;
    }

    /// <summary>The manifest of a complete archive; NOT_FOUND ARCHIVE_NOT_FOUND for anything else.</summary>
    public ArchiveManifest ReadComplete(ArchiveRef archive) =>
        TryReadManifest(archive) is { Complete: true } manifest ? manifest : throw ContractErrors.ArchiveNotFound(archive.Name);

    public void WriteManifest(ArchiveRef archive, ArchiveManifest manifest) =>
        AtomicFile.Write(FileIn(archive, ManifestFileName), JsonSerializer.SerializeToUtf8Bytes(manifest, ManifestJson.Default.ArchiveManifest));

    /// <summary>Throws the file system's error unless the repository directory exists and a file can be created in it.</summary>
    public void CheckWritable()
    {
        if (!System.IO.Directory.Exists(Root))
        {
            throw new DirectoryNotFoundException($"the repository directory {Root} does not exist");
        }
        string probe = Path.Join(Root, ".write-probe-" + Convert.ToHexStringLower(System.Security.Cryptography.RandomNumberGenerator.GetBytes(6)));
        File.WriteAllBytes(probe, []);
        File.Delete(probe);
    }

    /// <summary>The guests that have a directory in the repository.</summary>
    public IEnumerable<string> EnumerateGuestIds()
    {
        if (!System.IO.Directory.Exists(Root))
        {
            throw new DirectoryNotFoundException($"the repository directory {Root} does not exist");
        }
        return new DirectoryInfo(Root).EnumerateDirectories()
            .Where(d => d.LinkTarget is null && ProtocolNames.IsValidGuestId(d.Name))
            .Select(d => d.Name);
    }

    /// <summary>Every archive of the guest (or of every guest) whose manifest can be read, complete or not.</summary>
    public List<(ArchiveRef Archive, ArchiveManifest Manifest)> LoadArchives(string? guestId, bool includeIncomplete)
    {
        var result = new List<(ArchiveRef, ArchiveManifest)>();
        IEnumerable<string> guests = guestId is null ? EnumerateGuestIds() : [guestId];
        foreach (string guest in guests)
        {
            var guestDirectory = new DirectoryInfo(GuestDirectory(guest));
            if (!guestDirectory.Exists || guestDirectory.LinkTarget is not null)
            {
                continue;
            }
            foreach (DirectoryInfo directory in guestDirectory.EnumerateDirectories())
            {
                if (!ArchiveTimestamp.TryParse(directory.Name, out _))
                {
                    continue;
                }
                var archive = new ArchiveRef(guest, directory.Name);
                if (TryReadManifest(archive) is { } manifest && (includeIncomplete || manifest.Complete))
                {
                    result.Add((archive, manifest));
                }
            }
        }
        return result;
    }

    /// <summary>
    /// Creates the directory of a new archive named after <paramref name="time"/>. A second backup of the guest within
    /// the same second gets the next free second, so names stay unique. Call it under the guest's lock.
    /// </summary>
    public ArchiveRef CreateArchiveDirectory(string guestId, DateTimeOffset time)
    {
        string guestDirectory = GuestDirectory(guestId);
        if (IsSymlink(guestDirectory))
        {
            throw new IOException($"{guestDirectory} is a symbolic link; the provider does not follow links in its repository");
        }
        System.IO.Directory.CreateDirectory(guestDirectory, PrivateDirectoryMode);
        for (int attempt = 0; attempt < 3600; attempt++)
        {
            var archive = new ArchiveRef(guestId, ArchiveTimestamp.Format(time.AddSeconds(attempt)));
            string path = DirectoryOf(archive);
            if (Path.Exists(path))
            {
                continue;
            }
            System.IO.Directory.CreateDirectory(path, PrivateDirectoryMode);
            return archive;
        }
        throw new IOException($"no free archive name for guest {guestId} within an hour of {time:O}");
    }

    /// <summary>
    /// True when the archive's directory exists as a real directory in a real guest directory. The provider never
    /// creates links, and one planted in the repository must not lead a delete or a read outside of it.
    /// </summary>
    public bool ArchiveDirectoryExists(ArchiveRef archive) =>
        System.IO.Directory.Exists(DirectoryOf(archive)) && !IsSymlink(GuestDirectory(archive.GuestId)) && !IsSymlink(DirectoryOf(archive));

    /// <summary>Removes an archive directory and everything in it; nothing if it is gone already or is not ours.</summary>
    public void RemoveArchiveDirectory(ArchiveRef archive)
    {
        if (!ArchiveDirectoryExists(archive))
        {
            return;
        }
        string path = DirectoryOf(archive);
        try
        {
            System.IO.Directory.Delete(path, recursive: true);
        }
        catch (DirectoryNotFoundException)
        {
        }
        AtomicFile.SyncDirectory(GuestDirectory(archive.GuestId));
    }

    public IncrementalState ReadIncrementalState(string guestId)
    {
        try
        {
            byte[] bytes = File.ReadAllBytes(Path.Join(GuestDirectory(guestId), IncrementalStateFileName));
            return JsonSerializer.Deserialize(bytes, ManifestJson.Default.IncrementalState) ?? new IncrementalState();
        }
        catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException or JsonException)
        {
            // No state (or unreadable state) only costs a full backup.
            return new IncrementalState();
        }
    }

    public void WriteIncrementalState(string guestId, IncrementalState state) =>
        AtomicFile.Write(Path.Join(GuestDirectory(guestId), IncrementalStateFileName),
            JsonSerializer.SerializeToUtf8Bytes(state, ManifestJson.Default.IncrementalState));

    /// <summary>
    /// The previous image of <paramref name="device"/> an incremental backup can be stacked on: the device's last
    /// successful backup, if it still exists, is complete and has the same size. Null means "back up in full".
    /// </summary>
    public (ArchiveRef Archive, ManifestVolume Volume)? FindIncrementalBase(string guestId, string device, long sizeBytes)
    {
        IncrementalState state = ReadIncrementalState(guestId);
        if (!state.LastArchiveByDevice.TryGetValue(device, out string? name) || TryParse(name) is not { } archive
            || archive.GuestId != guestId)
        {
            return null;
        }
        if (TryReadManifest(archive) is not { Complete: true } manifest || manifest.FindVolume(device) is not { } volume
            || volume.SizeBytes != sizeBytes || !File.Exists(FileIn(archive, volume.File)))
        {
            return null;
        }
        return (archive, volume);
    }

    /// <summary>The names of <paramref name="archive"/> and of every archive its images are (transitively) backed by.</summary>
    public HashSet<string> CollectChain(ArchiveRef archive, ArchiveManifest manifest)
    {
        var names = new HashSet<string>(StringComparer.Ordinal) { archive.Name };
        var pending = new Queue<ArchiveManifest>([manifest]);
        while (pending.TryDequeue(out ArchiveManifest? current))
        {
            foreach (ManifestVolume volume in current.Volumes)
            {
                if (volume.Parent is { } parentName && names.Add(parentName) && TryParse(parentName) is { } parent
                    && TryReadManifest(parent) is { } parentManifest)
                {
                    pending.Enqueue(parentManifest);
                }
            }
        }
        return names;
    }

    /// <summary>The relative path an overlay in one archive uses to name its backing image in another.</summary>
    public static string RelativeImagePath(ArchiveRef archive, ManifestVolume volume) => "../" + archive.Timestamp + "/" + volume.File;

    private static bool IsSymlink(string path)
    {
        try
        {
            return new FileInfo(path).LinkTarget is not null;
        }
        catch (IOException)
        {
            return false;
        }
    }

    /// <summary>A manifest edited by hand or by an attacker must not make the provider open files elsewhere.</summary>
    private static bool IsConsistent(ArchiveRef archive, ArchiveManifest manifest)
    {
        if (manifest.GuestId != archive.GuestId || manifest.FormatVersion != ArchiveManifest.CurrentFormatVersion)
        {
            return false;
        }
        var devices = new HashSet<string>(StringComparer.Ordinal);
        foreach (ManifestVolume volume in manifest.Volumes)
        {
            if (!DeviceName.IsValid(volume.Device) || !devices.Add(volume.Device) || volume.SizeBytes <= 0
                || !(manifest.GuestType == ArchiveManifest.GuestTypeContainer
                    ? volume.Format == ManifestVolume.FormatTarZst
                    : volume.Format is ManifestVolume.FormatRaw or ManifestVolume.FormatQcow2)
                || volume.File != volume.Device + "." + volume.Format)
            {
                return false;
            }
            if (volume.Parent is not null
                && (volume.Format != ManifestVolume.FormatQcow2 || TryParse(volume.Parent) is not { } parent
                    || parent.GuestId != archive.GuestId || parent == archive))
            {
                return false;
            }
        }
        return true;
    }
}
