namespace Grpc.Backup.Containers.Internal;

/// <summary>
/// The tree the archive builds, member by member, to catch what single members cannot show: writing through a symlink
/// defined earlier (symlink-then-write), writing under something that is not a directory, redefining a directory or a
/// symlink as something else, and hard links to anything but an earlier file of the archive.
/// </summary>
internal sealed class ArchiveTree
{
    private readonly Dictionary<string, MemberKind> _kinds = new(StringComparer.Ordinal) { [""] = MemberKind.Directory };

    public void Add(string path, MemberKind kind, string member)
    {
        CheckAncestors(path, member, $"member '{member}'");
        if (path.Length == 0 && kind != MemberKind.Directory)
        {
            throw new TarArchiveRejectedException($"member '{member}' is the archive root ('.') but is a {Describe(kind)}, not a directory", member);
        }
        if (_kinds.TryGetValue(path, out MemberKind old) && !CanReplace(old, kind))
        {
            throw new TarArchiveRejectedException(
                $"member '{member}' redefines '{path}', a {Describe(old)} earlier in the archive, as a {Describe(kind)}", member);
        }
        _kinds[path] = kind;
    }

    public void CheckHardLinkTarget(string target, string member)
    {
        CheckAncestors(target, member, $"hard link '{member}' (to '{target}')");
        if (!_kinds.TryGetValue(target, out MemberKind kind))
        {
            throw new TarArchiveRejectedException(
                $"hard link '{member}' points to '{target}', which is not an earlier member of the archive", member);
        }
        if (kind is not (MemberKind.RegularFile or MemberKind.HardLink or MemberKind.Fifo))
        {
            throw new TarArchiveRejectedException($"hard link '{member}' points to '{target}', a {Describe(kind)}; only files can be linked", member);
        }
    }

    private void CheckAncestors(string path, string member, string subject)
    {
        foreach (string ancestor in ArchiveMemberPath.Ancestors(path))
        {
            if (!_kinds.TryGetValue(ancestor, out MemberKind kind))
            {
                // tar creates missing parents as directories; remember them so a later symlink cannot take their place.
                _kinds[ancestor] = MemberKind.Directory;
                continue;
            }
            if (kind == MemberKind.SymbolicLink)
            {
                throw new TarArchiveRejectedException(
                    $"{subject} goes through '{ancestor}', a symlink defined earlier in the archive (symlink-then-write)", member);
            }
            if (kind != MemberKind.Directory)
            {
                throw new TarArchiveRejectedException(
                    $"{subject} is under '{ancestor}', which the archive defines as a {Describe(kind)}, not a directory", member);
            }
        }
    }

    // tar replaces a file by unlinking it and a directory's metadata in place; a directory replaced by anything else,
    // or a symlink by anything but a symlink, would change what later members write through.
    private static bool CanReplace(MemberKind old, MemberKind kind) =>
        old == kind || (IsFileLike(old) && IsFileLike(kind));

    private static bool IsFileLike(MemberKind kind) =>
        kind is MemberKind.RegularFile or MemberKind.HardLink or MemberKind.Fifo or MemberKind.Device;

    public static string Describe(MemberKind kind) => kind switch
    {
        MemberKind.Directory => "directory",
        MemberKind.RegularFile => "regular file",
        MemberKind.HardLink => "hard link",
        MemberKind.SymbolicLink => "symlink",
        MemberKind.Fifo => "fifo",
        _ => "device node",
    };
}
