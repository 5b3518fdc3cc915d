namespace Grpc.Backup.Containers;

/// <summary>How a tar archive from a provider is compressed, told by its magic bytes (its name does not matter).</summary>
public enum ArchiveCompression
{
    None,
    Gzip,
    Zstd,
    Xz,
    Bzip2,
}
