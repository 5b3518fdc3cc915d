namespace Grpc.Backup.Service.Internal.Engine;

/// <summary>
/// What one guest's backup produced, whichever runner made it; <paramref name="Checksums"/> is each VM volume's
/// content_sha256 as the provider reported it (empty when it computed none), <paramref name="Digests"/> the volumes'
/// chunk digests it reported (with their chunk lists when streamed), and a container's file manifest: what verification
/// compares with.
/// </summary>
internal sealed record GuestOutcome(string Archive, string Consistency, IReadOnlyList<string> BitmapModes, ulong BytesRead, ulong ArchiveSize,
    IReadOnlyDictionary<string, string>? Checksums = null, Containers.FileManifest? Manifest = null,
    IReadOnlyDictionary<string, Catalog.RecordedDigest>? Digests = null);
