namespace Grpc.Backup.Containers;

/// <summary>One member of a container archive as a listing shows it; owners are the container's view.</summary>
/// <param name="Path">The canonical path in the archive ("etc/passwd"; "" is the root).</param>
/// <param name="Size">Bytes of a file (the apparent size of a sparse one); 0 for anything else.</param>
/// <param name="Mode">Permission bits, with setuid, setgid and sticky.</param>
/// <param name="UserName">The owner's name as the archive records it, if it does.</param>
/// <param name="LinkTarget">A symlink's target as written, or a hard link's target path; null otherwise.</param>
public sealed record ArchiveEntry(
    string Path,
    ArchiveEntryKind Kind,
    long Size,
    UnixFileMode Mode,
    int Uid,
    int Gid,
    string? UserName,
    string? GroupName,
    DateTimeOffset ModificationTime,
    string? LinkTarget);
