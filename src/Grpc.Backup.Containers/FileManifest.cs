using System.Diagnostics;
using System.Formats.Tar;
using System.Globalization;
using System.Security.Cryptography;
using System.Text.Json;
using Grpc.Backup.Containers.Internal;
using Grpc.Backup.Protocol.Containers;

namespace Grpc.Backup.Containers;

/// <summary>
/// A container tree's file manifest (<see cref="FileManifestEntry"/> per member, sorted by path), what a container
/// backup's verification compares a restore with. It is computed as the container's root inside its user namespace,
/// never as host root: GNU tar walks the tree there with the backup's own exclusions (so the manifest lists exactly what
/// the archive holds) and its stream is read here with <see cref="TarReader"/>, hashing each regular file. Hard links
/// are recorded as the file they link to, so the manifest does not depend on which name tar happened to meet first.
/// </summary>
public sealed class FileManifest
{
    private static readonly JsonSerializerOptions Json = new() { WriteIndented = false };

    public FileManifest(IEnumerable<FileManifestEntry> entries)
    {
        ArgumentNullException.ThrowIfNull(entries);
        Entries = [.. entries.OrderBy(e => e.Path, StringComparer.Ordinal)];
    }

    public IReadOnlyList<FileManifestEntry> Entries { get; }

    /// <summary>Bytes of regular-file content hashed.</summary>
    public long ContentBytes => Entries.Sum(e => e.Type == "file" ? e.Size : 0);

    /// <summary>
    /// Walks <paramref name="directory"/> as the namespace's root. <paramref name="excludeArguments"/> are tar's (a
    /// view's <see cref="ContainerBackupView.TarExcludeArguments"/>; none for a restored tree, which holds only what was
    /// archived). Files that vanish or change while read are tar's exit status 1 and are taken as read.
    /// </summary>
    public static async Task<FileManifest> ComputeAsync(UserNamespace userNamespace, string directory, IEnumerable<string> excludeArguments,
        CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(userNamespace);
        // The content as a reader sees it: no sparse encoding (its map would be hashed instead of the data), no xattrs.
        IReadOnlyList<string> arguments = [.. TarCreateArguments.Build(directory, excludeArguments)
            .Where(a => a is not ("--sparse" or "--xattrs" or "--xattrs-include=*" or "--acls"))];
        Process tar = userNamespace.Command("tar", arguments).Start();
        Task<string> errors = tar.StandardError.ReadToEndAsync(CancellationToken.None);
        try
        {
            tar.StandardInput.Close();
            List<FileManifestEntry> entries = await ReadAsync(tar.StandardOutput.BaseStream, cancellationToken);
            await tar.WaitForExitAsync(cancellationToken);
            string stderr = await errors;
            if (tar.ExitCode > 1)
            {
                throw new ContainerBackupException($"tar could not list the tree for its file manifest (exit status {tar.ExitCode}): {stderr.Trim()}");
            }
            return new FileManifest(entries);
        }
        finally
        {
            ProcessRunner.KillAndDispose(tar);
        }
    }

    /// <summary>The first difference of <paramref name="actual"/> from this (expected) manifest, naming the file; null when equal.</summary>
    public string? FirstDifference(FileManifest actual)
    {
        ArgumentNullException.ThrowIfNull(actual);
        var found = actual.Entries.ToDictionary(e => e.Path, StringComparer.Ordinal);
        foreach (FileManifestEntry expected in Entries)
        {
            string name = expected.Path.Length == 0 ? "/" : "/" + expected.Path;
            if (!found.Remove(expected.Path, out FileManifestEntry? entry))
            {
                if (expected.Type is "char" or "block")
                {
                    // Restore skips device nodes by default (DeviceNodePolicy.Skip): their absence is the policy, not damage.
                    continue;
                }
                return $"{name}: missing from the restore";
            }
            if (entry.Type != expected.Type)
            {
                return $"{name}: restored as {entry.Type}, recorded as {expected.Type}";
            }
            if (entry.Sha256 != expected.Sha256 || entry.Size != expected.Size)
            {
                return $"{name}: content differs (restored {entry.Size} bytes, sha256 {entry.Sha256}; recorded {expected.Size} bytes, sha256 {expected.Sha256})";
            }
            if (entry.LinkTarget != expected.LinkTarget)
            {
                return $"{name}: link target '{entry.LinkTarget}', recorded '{expected.LinkTarget}'";
            }
            if ((entry.Mode, entry.Uid, entry.Gid) != (expected.Mode, expected.Uid, expected.Gid))
            {
                return string.Create(CultureInfo.InvariantCulture,
                    $"{name}: mode {Convert.ToString(entry.Mode, 8)} owner {entry.Uid}:{entry.Gid}, recorded mode {Convert.ToString(expected.Mode, 8)} owner {expected.Uid}:{expected.Gid}");
            }
        }
        return found.Keys.Order(StringComparer.Ordinal).FirstOrDefault() is { } extra ? $"/{extra}: in the restore but not recorded" : null;
    }

    public async Task SaveAsync(string path, CancellationToken cancellationToken)
    {
        await using FileStream file = File.Create(path);
        await JsonSerializer.SerializeAsync(file, Entries, Json, cancellationToken);
    }

    /// <summary>Reads a manifest this host saved (the service's own state file, not a provider's input).</summary>
    public static async Task<FileManifest> LoadAsync(string path, CancellationToken cancellationToken)
    {
        await using FileStream file = File.OpenRead(path);
        return new FileManifest(await JsonSerializer.DeserializeAsync<List<FileManifestEntry>>(file, Json, cancellationToken)
            ?? throw new InvalidDataException($"{path} holds no manifest"));
    }

    private static async Task<List<FileManifestEntry>> ReadAsync(Stream stream, CancellationToken cancellationToken)
    {
        var entries = new List<FileManifestEntry>();
        var byPath = new Dictionary<string, FileManifestEntry>(StringComparer.Ordinal);
        using var reader = new TarReader(stream, leaveOpen: true);
        while (await reader.GetNextEntryAsync(copyData: false, cancellationToken) is { } entry)
        {
            string path = Normalize(entry.Name);
            FileManifestEntry item = entry.EntryType switch
            {
                TarEntryType.RegularFile or TarEntryType.V7RegularFile => new FileManifestEntry(path, "file", (int)entry.Mode, entry.Uid, entry.Gid,
                    entry.Length, await HashAsync(entry.DataStream, cancellationToken), null),
                // The linked file's content and metadata: which of the names is the "link" is tar's walk order.
                TarEntryType.HardLink => byPath.TryGetValue(Normalize(entry.LinkName), out FileManifestEntry? target)
                    ? target with { Path = path }
                    : throw new InvalidDataException($"tar stored {entry.Name} as a hard link to {entry.LinkName}, which it had not stored before"),
                TarEntryType.Directory => new FileManifestEntry(path, "dir", (int)entry.Mode, entry.Uid, entry.Gid, 0, null, null),
                TarEntryType.SymbolicLink => new FileManifestEntry(path, "symlink", (int)entry.Mode, entry.Uid, entry.Gid, 0, null, entry.LinkName),
                TarEntryType.CharacterDevice => new FileManifestEntry(path, "char", (int)entry.Mode, entry.Uid, entry.Gid, 0, null, Device(entry)),
                TarEntryType.BlockDevice => new FileManifestEntry(path, "block", (int)entry.Mode, entry.Uid, entry.Gid, 0, null, Device(entry)),
                TarEntryType.Fifo => new FileManifestEntry(path, "fifo", (int)entry.Mode, entry.Uid, entry.Gid, 0, null, null),
                _ => throw new InvalidDataException($"tar stored {entry.Name} as an unexpected entry type {entry.EntryType}"),
            };
            entries.Add(item);
            byPath[path] = item;
        }
        return entries;
    }

    private static string Device(TarEntry entry) => entry is PosixTarEntry posix
        ? string.Create(CultureInfo.InvariantCulture, $"{posix.DeviceMajor}:{posix.DeviceMinor}")
        : "";

    private static string Normalize(string name)
    {
        string path = name.TrimEnd('/');
        return path == "." ? "" : path.StartsWith("./", StringComparison.Ordinal) ? path[2..] : path;
    }

    private static async Task<string> HashAsync(Stream? data, CancellationToken cancellationToken) =>
        data is null ? Convert.ToHexStringLower(SHA256.HashData(ReadOnlySpan<byte>.Empty))
            : Convert.ToHexStringLower(await SHA256.HashDataAsync(data, cancellationToken));
}
