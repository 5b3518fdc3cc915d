using Grpc.Backup.Protocol;
using Grpc.Backup.Containers.Internal;

namespace Grpc.Backup.Containers;

/// <summary>
/// Checks a tar archive from a provider as untrusted input before anything of it is extracted. It refuses, naming the
/// member: absolute paths and <c>..</c>; members written through a symlink defined earlier or under a non-directory;
/// hard links to anything but an earlier file of the archive; multi-volume, label, incremental and unknown member
/// types; old GNU sparse members; sizes over the limits; owners outside the id map; headers with bad checksums (GNU
/// tar would resynchronise on them); truncation (a short member, or no end-of-archive marker); data after the end
/// marker; unknown compression. Device nodes and setuid/setgid bits follow <see cref="TarValidationOptions"/>;
/// fifos are accepted (a user namespace may create them).
/// </summary>
/// <remarks>
/// Members are listed with <see cref="System.Formats.Tar.TarReader"/>; where TarReader and GNU tar could read the same
/// bytes differently (checksums, pax <c>GNU.sparse.name</c>, repeated long-name headers, global headers, trailing
/// data) the archive is refused rather than interpreted. <see cref="ContainerRestore"/> runs the same pass and lets
/// tar extract exactly the bytes it accepted.
/// </remarks>
public static class TarArchiveValidator
{
    /// <summary>Reads the whole archive and reports what it holds.</summary>
    /// <exception cref="TarArchiveRejectedException">The archive is refused.</exception>
    public static Task<TarValidationReport> ValidateAsync(Stream archive, TarValidationOptions? options = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(archive);
        return ValidateAsync(archive, options ?? new TarValidationOptions(), sink: null, throttle: null, cancellationToken);
    }

    /// <summary>Validates and forwards each accepted byte of the decompressed tar stream to <paramref name="sink"/>.</summary>
    internal static async Task<TarValidationReport> ValidateAsync(Stream archive, TarValidationOptions options, Stream? sink, BandwidthThrottle? throttle,
        CancellationToken cancellationToken, MemberSelection? selection = null, Action<ScannedMember, System.Formats.Tar.TarEntry>? onMember = null)
    {
        (ArchiveCompression compression, Stream tar) = await ArchiveDecompression.OpenAsync(archive, cancellationToken);
        await using (tar)
        {
            try
            {
                return await new ArchiveScan(options, sink, throttle, selection, onMember).RunAsync(tar, compression, cancellationToken);
            }
            catch (InvalidDataException e)
            {
                // A decompressor found corrupt data in the middle of a member.
                throw new TarArchiveRejectedException($"the {compression} data is corrupt: {e.Message}", null, e);
            }
        }
    }
}
