namespace Grpc.Backup.Containers.Internal;

/// <summary>A member that passed the per-member rules: its name as written, canonical path, kind and what to do with it.</summary>
internal sealed record ScannedMember(string Name, string Path, MemberKind Kind, string? HardLinkTarget, long Size, bool Skip, bool HasSetIdBits);
