namespace Grpc.Backup.Providers.Borg.Internal;

/// <summary>
/// One restore: the archive it reads (pinned against delete and prune until cleanup) and what was handed to the host
/// (extracted images, an export-tar process), released by the cleanup calls.
/// </summary>
internal sealed class RestoreSession(string restoreId, BorgArchiveName archive, CatalogEntry entry)
{
    public string RestoreId => restoreId;

    public BorgArchiveName Archive => archive;

    public CatalogEntry Entry => entry;

    public SemaphoreSlim Gate { get; } = new(1, 1);

    /// <summary>Per device: the read-only handle of the extracted image, kept open until the volume's cleanup.</summary>
    public Dictionary<string, IDisposable> Volumes { get; } = new(StringComparer.Ordinal);

    /// <summary>The export-tar process of a container restore, stopped at cleanup.</summary>
    public BorgProcess? ExportTar { get; set; }

    public async Task ReleaseAsync()
    {
        foreach (IDisposable volume in Volumes.Values)
        {
            volume.Dispose();
        }
        Volumes.Clear();
        if (ExportTar is { } export)
        {
            ExportTar = null;
            await export.DisposeAsync();
        }
    }
}
