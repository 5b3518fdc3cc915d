namespace Grpc.Backup.Containers;

/// <summary>What a member of a container archive is.</summary>
public enum ArchiveEntryKind
{
    Directory,
    File,
    Symlink,
    HardLink,
    Fifo,
    CharacterDevice,
    BlockDevice,
}
