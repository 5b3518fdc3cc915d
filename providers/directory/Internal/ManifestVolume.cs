namespace Grpc.Backup.Providers.Directory.Internal;

/// <summary>One stored device of an archive, as recorded in its manifest.</summary>
internal sealed class ManifestVolume
{
    public const string FormatRaw = "raw";
    public const string FormatQcow2 = "qcow2";

    /// <summary>A container's tree: a zstd-compressed pax tar (the only volume of a container archive).</summary>
    public const string FormatTarZst = "tar.zst";

    public required string Device { get; init; }

    public required long SizeBytes { get; init; }

    /// <summary>The image file inside the archive directory, e.g. <c>drive-scsi0.raw</c>.</summary>
    public required string File { get; init; }

    /// <summary><see cref="FormatRaw"/> (a sparse full image) or <see cref="FormatQcow2"/> (an overlay, or a flattened one).</summary>
    public required string Format { get; set; }

    /// <summary>The archive whose image of this device backs this one, or null when the image stands alone.</summary>
    public string? Parent { get; set; }

    /// <summary>The bitmap mode the host reported: none, new or reuse.</summary>
    public required string BitmapMode { get; init; }

    public long BytesRead { get; init; }

    public long BytesStored { get; init; }

    /// <summary>The lowercase hex SHA-256 of the whole volume as a restore produces it; null unless an older provider wrote it.</summary>
    public string? ContentSha256 { get; init; }

    /// <summary>The volume's digest (<c>VolumeDigest.value</c>, <see cref="Protocol.ChunkDigestList"/>); null in older manifests.</summary>
    public string? Digest { get; init; }

    /// <summary>The chunk list beside the image (e.g. <c>drive-scsi0.chunks</c>), which the next incremental starts from; null in older manifests.</summary>
    public string? ChunkDigestsFile { get; init; }
}
