using System.IO.Compression;

namespace Grpc.Backup.Containers.Internal;

/// <summary>
/// Tells the compression by magic bytes and opens the decompressed tar stream: gzip in-process (managed code), zstd,
/// xz and bzip2 through their CLIs. Restore feeds tar the decompressed bytes it validated, so tar never decompresses
/// anything itself and cannot see a different archive than the validator did.
/// </summary>
internal static class ArchiveDecompression
{
    public static async Task<(ArchiveCompression Compression, Stream Tar)> OpenAsync(Stream archive, CancellationToken cancellationToken)
    {
        byte[] head = new byte[TarHeaderBlock.Size];
        int read = await archive.ReadAtLeastAsync(head, head.Length, throwOnEndOfStream: false, cancellationToken);
        if (read == 0)
        {
            throw new TarArchiveRejectedException("the archive is empty (0 bytes)");
        }
        ReadOnlySpan<byte> magic = head.AsSpan(0, read);
        ArchiveCompression compression = Detect(magic);
        var replay = new PrefixedStream(head.AsMemory(0, read), archive);
        Stream tar = compression switch
        {
            ArchiveCompression.Gzip => new GZipStream(replay, CompressionMode.Decompress),
            ArchiveCompression.Zstd => new ExternalDecompressorStream("zstd", replay),
            ArchiveCompression.Xz => new ExternalDecompressorStream("xz", replay),
            ArchiveCompression.Bzip2 => new ExternalDecompressorStream("bzip2", replay),
            _ => replay,
        };
        return (compression, tar);
    }

    private static ArchiveCompression Detect(ReadOnlySpan<byte> magic)
    {
        if (magic.StartsWith((ReadOnlySpan<byte>)[0x1f, 0x8b]))
        {
            return ArchiveCompression.Gzip;
        }
        if (magic.StartsWith((ReadOnlySpan<byte>)[0x28, 0xb5, 0x2f, 0xfd]))
        {
            return ArchiveCompression.Zstd;
        }
        if (magic.StartsWith((ReadOnlySpan<byte>)[0xfd, (byte)'7', (byte)'z', (byte)'X', (byte)'Z', 0x00]))
        {
            return ArchiveCompression.Xz;
        }
        if (magic.StartsWith("BZh"u8))
        {
            return ArchiveCompression.Bzip2;
        }
        // ustar, pax and GNU headers all carry "ustar" at 257; pre-POSIX v7 archives do not and are not accepted. A
        // zero block is an archive that ends at once (the scan then says it has no members).
        if ((magic.Length >= 262 && magic[257..262].SequenceEqual("ustar"u8)) || (magic.Length == TarHeaderBlock.Size && TarHeaderBlock.IsZero(magic)))
        {
            return ArchiveCompression.None;
        }
        string known = magic switch
        {
            _ when magic.StartsWith((ReadOnlySpan<byte>)[0x89, (byte)'L', (byte)'Z', (byte)'O']) => " (lzop, not supported)",
            _ when magic.StartsWith((ReadOnlySpan<byte>)[0x04, 0x22, 0x4d, 0x18]) => " (lz4, not supported)",
            _ when magic.StartsWith("PK\u0003\u0004"u8) => " (zip, not a tar archive)",
            _ when magic.StartsWith((ReadOnlySpan<byte>)[0x1f, 0x9d]) => " (compress, not supported)",
            _ => "",
        };
        throw new TarArchiveRejectedException(
            $"unrecognized archive format{known}: first bytes {Convert.ToHexString(magic[..Math.Min(8, magic.Length)])} are not a tar archive "
            + "nor gzip, zstd, xz or bzip2 data");
    }
}
