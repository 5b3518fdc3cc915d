namespace Grpc.Backup.Containers.Internal;

/// <summary>What a path in the archive is, as far as later members are concerned.</summary>
internal enum MemberKind
{
    Directory,
    RegularFile,
    HardLink,
    SymbolicLink,
    Fifo,
    /// <summary>A device node: skipped or refused by policy, so never on disk.</summary>
    Device,
}
