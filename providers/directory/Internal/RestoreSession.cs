namespace Grpc.Backup.Providers.Directory.Internal;

/// <summary>
/// One restore, keyed by restore_id: the archive, its manifest as read at RestoreVmInit, the archives its images
/// depend on (pinned against deletion while the restore runs), and one export per device.
/// </summary>
internal sealed class RestoreSession(string restoreId, ArchiveRef archive, ArchiveManifest manifest, IReadOnlySet<string> chain)
{
    public string RestoreId { get; } = restoreId;

    public ArchiveRef Archive { get; } = archive;

    public ArchiveManifest Manifest { get; } = manifest;

    /// <summary>The archive and every archive its images are backed by.</summary>
    public IReadOnlySet<string> Chain { get; } = chain;

    /// <summary>Serialises the init and cleanup calls of this restore's devices.</summary>
    public SemaphoreSlim Gate { get; } = new(1, 1);

    public Dictionary<string, RestoreVolumeExport> Exports { get; } = new(StringComparer.Ordinal);
}
