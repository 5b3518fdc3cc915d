namespace Grpc.Backup.Providers.Borg.Internal;

/// <summary>
/// The provider's record of one archive, in its state directory: the metadata, whether BackupCleanup(success)
/// finished it, the sizes borg reported, and the mutable attributes (protected, notes) that a borg archive cannot
/// change without rewriting it.
/// </summary>
internal sealed class CatalogEntry
{
    public ArchiveMetadata Metadata { get; set; } = new();

    public bool Complete { get; set; }

    public bool Protected { get; set; }

    public string Notes { get; set; } = "";

    /// <summary>Bytes a full restore produces (the volumes' sizes, or the tree's).</summary>
    public long OriginalSize { get; set; }

    /// <summary>The whole archive after compression, before deduplication.</summary>
    public long CompressedSize { get; set; }

    /// <summary>What this archive added to the repository (compressed, deduplicated), when it was created.</summary>
    public long DeduplicatedSize { get; set; }

    public Dictionary<string, long> BytesRead { get; set; } = [];
}
