using Grpc.Backup.Provider;
using System.Globalization;
using System.Text.Json;

namespace Grpc.Backup.Providers.Borg.Internal;

/// <summary>
/// The borg commands the services use. Reading commands (list, info, the previous image of an incremental) run with
/// <c>--bypass-lock</c>: borg 1.2 segments are append-only until <c>borg compact</c>, and compact, delete and every
/// other writer run only under <see cref="RepositoryLock"/>, so a reader never sees data disappear under it, and a
/// backup can read its previous archive while it writes the new one. Writers check for stale locks first.
/// </summary>
internal sealed class BorgRepository(BorgCli borg, Catalog catalog)
{
    private readonly Lock _listingLock = new();
    private (string Marker, Dictionary<string, DateTimeOffset> Archives)? _listing;

    public BorgProviderOptions Options => borg.Options;

    /// <summary>
    /// Opens the repository (passphrase, reachability, a stale lock) without changing anything, and returns the names
    /// of its archives: one borg start-up both checks access and gives a job the listing its backups are named from.
    /// </summary>
    public async Task<IReadOnlySet<string>> OpenAsync(CancellationToken cancellationToken)
    {
        StaleLockInspector.ThrowIfStale(borg.Options);
        // Always borg itself: this is where a wrong passphrase or an unreachable repository shows.
        return (await ListAsync(cancellationToken, fresh: true)).Keys.ToHashSet(StringComparer.Ordinal);
    }

    /// <summary><c>borg info</c> of the repository: its size, with --bypass-lock.</summary>
    public Task<JsonDocument> InfoAsync(CancellationToken cancellationToken) =>
        borg.RunJsonAsync(["info", "--json", "--bypass-lock", borg.Repository], "info", cancellationToken, reader: true);

    /// <summary>
    /// Every archive in the repository by borg name, with borg's start time. Each borg run costs a Python start-up and
    /// the repository's key (seconds under load), and every restore or backup call lists; so on a local repository
    /// the last listing is reused while the repository's transaction is the same one. Borg writes a new
    /// <c>index.N</c> at every commit (a create, delete, rename or comment change, by us or anyone), so an unchanged
    /// index file is an unchanged manifest. A remote repository, or <paramref name="fresh"/>, always runs borg.
    /// </summary>
    public async Task<Dictionary<string, DateTimeOffset>> ListAsync(CancellationToken cancellationToken, bool fresh = false)
    {
        string? before = TransactionMarker();
        lock (_listingLock)
        {
            if (!fresh && before is not null && _listing is { } cached && cached.Marker == before)
            {
                return new Dictionary<string, DateTimeOffset>(cached.Archives, StringComparer.Ordinal);
            }
        }
        using JsonDocument list = await borg.RunJsonAsync(["list", "--json", "--bypass-lock", borg.Repository], "list", cancellationToken,
            reader: true);
        var archives = new Dictionary<string, DateTimeOffset>(StringComparer.Ordinal);
        foreach (JsonElement archive in list.RootElement.GetProperty("archives").EnumerateArray())
        {
            string name = archive.GetProperty("name").GetString() ?? "";
            DateTimeOffset.TryParse(archive.GetProperty("start").GetString(), CultureInfo.InvariantCulture,
                DateTimeStyles.AssumeUniversal, out DateTimeOffset start);
            archives[name] = start;
        }
        if (before is not null && before == TransactionMarker())
        {
            lock (_listingLock)
            {
                _listing = (before, new Dictionary<string, DateTimeOffset>(archives, StringComparer.Ordinal));
            }
        }
        return archives;
    }

    /// <summary>
    /// The local repository's current transaction: its one <c>index.N</c> file's name, size and modification time;
    /// null for a remote repository, or while a commit has two index files or none.
    /// </summary>
    private string? TransactionMarker()
    {
        if (borg.Options.IsRemote)
        {
            return null;
        }
        try
        {
            string[] indexes = Directory.GetFiles(borg.Repository, "index.*");
            if (indexes.Length != 1)
            {
                return null;
            }
            var index = new FileInfo(indexes[0]);
            return string.Create(CultureInfo.InvariantCulture, $"{index.Name}:{index.Length}:{index.LastWriteTimeUtc.Ticks}");
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return null;
        }
    }

    /// <summary>
    /// The catalog entry of a complete archive. When the catalog has none (a lost state directory, another provider
    /// instance), it is rebuilt from the archive's comment and <c>borg info</c>; null when the archive is not there.
    /// </summary>
    public async Task<CatalogEntry?> DescribeAsync(BorgArchiveName archive, IReadOnlyDictionary<string, DateTimeOffset>? listing,
        CancellationToken cancellationToken)
    {
        listing ??= await ListAsync(cancellationToken);
        if (!listing.ContainsKey(archive.BorgName))
        {
            return null;
        }
        if (catalog.TryRead(archive) is { Complete: true } known)
        {
            return known;
        }
        using JsonDocument info = await borg.RunJsonAsync(["info", "--json", "--bypass-lock", borg.Archive(archive.BorgName)],
            "info", cancellationToken);
        JsonElement element = info.RootElement.GetProperty("archives")[0];
        ArchiveMetadata? metadata;
        try
        {
            metadata = JsonSerializer.Deserialize(element.GetProperty("comment").GetString() ?? "", CatalogJson.Default.ArchiveMetadata);
        }
        catch (JsonException e)
        {
            throw ContractErrors.ArchiveCorrupt(archive.Name, $"its comment is not this provider's metadata ({e.Message})");
        }
        if (metadata is null || metadata.GuestId != archive.GuestId)
        {
            throw ContractErrors.ArchiveCorrupt(archive.Name, "its comment does not describe it");
        }
        JsonElement stats = element.GetProperty("stats");
        var entry = new CatalogEntry
        {
            Metadata = metadata,
            Complete = true,
            OriginalSize = metadata.Volumes.Count > 0 ? metadata.Volumes.Sum(v => v.SizeBytes) : stats.GetProperty("original_size").GetInt64(),
            CompressedSize = stats.GetProperty("compressed_size").GetInt64(),
            DeduplicatedSize = stats.GetProperty("deduplicated_size").GetInt64(),
        };
        catalog.Write(archive, entry);
        return entry;
    }

    /// <summary>Deletes archives and compacts, so the space is free afterwards. The caller holds the repository lock.</summary>
    public async Task DeleteAsync(IReadOnlyList<string> borgNames, CancellationToken cancellationToken)
    {
        if (borgNames.Count == 0)
        {
            return;
        }
        StaleLockInspector.ThrowIfStale(borg.Options);
        await borg.RunAsync(["delete", borg.Repository, .. borgNames], "delete", cancellationToken);
        await borg.RunAsync(["compact", borg.Repository], "compact", cancellationToken);
    }

    public async Task RenameAsync(string from, string to, CancellationToken cancellationToken)
    {
        StaleLockInspector.ThrowIfStale(borg.Options);
        await borg.RunAsync(["rename", borg.Archive(from), to], "rename", cancellationToken);
    }

    /// <summary>
    /// Starts <c>borg import-tar</c> of the tar stream the caller writes to its stdin: fixed 4 MiB chunks, the
    /// metadata as comment, the backup time as the archive's time. The caller holds the repository lock.
    /// </summary>
    public BorgProcess StartImportTar(string borgName, ArchiveMetadata metadata)
    {
        StaleLockInspector.ThrowIfStale(borg.Options);
        string comment = JsonSerializer.Serialize(metadata, CatalogJson.Default.ArchiveMetadata);
        string timestamp = metadata.BackupTime.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss", CultureInfo.InvariantCulture);
        BorgProcess import = borg.Start(["import-tar", "--json", "--chunker-params", BorgProviderOptions.ChunkerParams, "--compression",
            borg.Options.Compression, "--comment", comment, "--timestamp", timestamp, borg.Archive(borgName), "-"], "import-tar");
        import.GrowInputPipe(1024 * 1024);
        return import;
    }

    /// <summary>Streams one member of an archive to stdout (a whole disk image, or a config).</summary>
    public BorgProcess StartExtract(string borgName, string member)
    {
        BorgProcess process = borg.Start(["extract", "--stdout", "--bypass-lock", borg.Archive(borgName), member], "extract", reader: true);
        process.StandardInput.Close();
        return process;
    }

    /// <summary>Streams an archive as a tar to stdout (container restore).</summary>
    public BorgProcess StartExportTar(string borgName)
    {
        BorgProcess process = borg.Start(["export-tar", "--bypass-lock", borg.Archive(borgName), "-"], "export-tar", reader: true);
        process.StandardInput.Close();
        return process;
    }

    /// <summary><c>borg check</c> of the repository and archives. The caller holds the repository lock.</summary>
    public async Task CheckAsync(CancellationToken cancellationToken)
    {
        StaleLockInspector.ThrowIfStale(borg.Options);
        await borg.RunAsync(["check", borg.Repository], "check", cancellationToken);
    }
}
