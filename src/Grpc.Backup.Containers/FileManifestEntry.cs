namespace Grpc.Backup.Containers;

/// <summary>
/// One member of a container's tree as its root sees it: the path relative to the root ("" for the root itself),
/// the type (<c>file</c>, <c>dir</c>, <c>symlink</c>, <c>char</c>, <c>block</c>, <c>fifo</c>), the permission bits,
/// the owner in the container's view (0, not 100000), the size and SHA-256 of a regular file, a symlink's target.
/// </summary>
public sealed record FileManifestEntry(string Path, string Type, int Mode, int Uid, int Gid, long Size, string? Sha256, string? LinkTarget);
