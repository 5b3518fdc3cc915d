using System.Text.Json;
using Grpc.Backup.Provider;

namespace Grpc.Backup.Providers.Borg.Internal;

/// <summary>
/// The sidecar catalog in the provider's state directory (0700):
/// <code>
/// catalog/&lt;guest&gt;/&lt;ts&gt;.json        CatalogEntry of archive &lt;guest&gt;@&lt;ts&gt;
/// catalog/&lt;guest&gt;/&lt;ts&gt;.log         the task log (BackupHandleLogFile)
/// catalog/&lt;guest&gt;/incremental.json  IncrementalState
/// </code>
/// The repository stays the truth for which archives exist: an entry without its archive is ignored, and an archive
/// without an entry is described from its comment. Files are replaced atomically.
/// </summary>
internal sealed class Catalog(BorgProviderOptions options)
{
    private const long MaxLogBytes = 256L * 1024 * 1024;

    public string Root => Path.Join(options.StateDirectory, "catalog");

    public CatalogEntry? TryRead(BorgArchiveName archive)
    {
        try
        {
            return JsonSerializer.Deserialize(File.ReadAllBytes(EntryPath(archive)), CatalogJson.Default.CatalogEntry);
        }
        catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException or JsonException)
        {
            return null;
        }
    }

    public void Write(BorgArchiveName archive, CatalogEntry entry)
    {
        Directory.CreateDirectory(GuestDirectory(archive.GuestId), UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        AtomicFile.Write(EntryPath(archive), JsonSerializer.SerializeToUtf8Bytes(entry, CatalogJson.Default.CatalogEntry));
    }

    public void Remove(BorgArchiveName archive)
    {
        if (Directory.Exists(GuestDirectory(archive.GuestId)))
        {
            File.Delete(EntryPath(archive));
            File.Delete(LogPath(archive));
        }
    }

    public string LogPath(BorgArchiveName archive) => Path.Join(GuestDirectory(archive.GuestId), archive.Timestamp + ".log");

    public async Task StoreLogAsync(BorgArchiveName archive, Microsoft.Win32.SafeHandles.SafeFileHandle log, CancellationToken cancellationToken)
    {
        Directory.CreateDirectory(GuestDirectory(archive.GuestId), UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        await AtomicFile.CopyFromAsync(log, LogPath(archive), MaxLogBytes, cancellationToken);
    }

    public IncrementalState ReadIncremental(string guestId)
    {
        try
        {
            return JsonSerializer.Deserialize(File.ReadAllBytes(IncrementalPath(guestId)), CatalogJson.Default.IncrementalState) ?? new();
        }
        catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException or JsonException)
        {
            return new IncrementalState();
        }
    }

    public void WriteIncremental(string guestId, IncrementalState state)
    {
        Directory.CreateDirectory(GuestDirectory(guestId), UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        AtomicFile.Write(IncrementalPath(guestId), JsonSerializer.SerializeToUtf8Bytes(state, CatalogJson.Default.IncrementalState));
    }

    private string GuestDirectory(string guestId) => Path.Join(Root, guestId);

    private string EntryPath(BorgArchiveName archive) => Path.Join(GuestDirectory(archive.GuestId), archive.Timestamp + ".json");

    private string IncrementalPath(string guestId) => Path.Join(GuestDirectory(guestId), "incremental.json");
}
