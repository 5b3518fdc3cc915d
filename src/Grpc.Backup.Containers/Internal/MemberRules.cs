using System.Formats.Tar;
using System.Globalization;

namespace Grpc.Backup.Containers.Internal;

/// <summary>
/// The checks one member can fail on its own: type, names, sizes, owners, mode bits, and the pax keywords GNU tar
/// acts on but TarReader does not interpret (multi-volume and sparse-file records, whose <c>GNU.sparse.name</c> is
/// the name GNU tar really extracts to).
/// </summary>
internal static class MemberRules
{
    private const string SparseName = "GNU.sparse.name";

    public static ScannedMember Check(TarEntry entry, ValidationGate gate, TarValidationOptions options)
    {
        IReadOnlyDictionary<string, string> pax = entry is PaxTarEntry paxEntry ? paxEntry.ExtendedAttributes : new Dictionary<string, string>();
        string name = pax.TryGetValue(SparseName, out string? sparseName) ? sparseName : entry.Name;
        CheckMetadataChain(gate, name);
        CheckLayout(entry, gate, name);
        MemberKind kind = KindOf(entry, name);
        CheckPaxKeywords(pax, kind, name);

        string path = ArchiveMemberPath.Normalize(name, name, "name");
        if (sparseName is not null)
        {
            // GNU tar extracts to GNU.sparse.name; the header's own name must not be a way around the checks either.
            ArchiveMemberPath.Normalize(entry.Name, name, "header name");
        }
        if (kind != MemberKind.Directory && name.EndsWith('/'))
        {
            throw Reject(name, $"is a {ArchiveTree.Describe(kind)} but its name ends in '/' (GNU tar might treat it as a directory)");
        }

        long size = CheckSizes(entry, gate, pax, kind, name, options);
        string? hardLinkTarget = null;
        if (kind == MemberKind.SymbolicLink && string.IsNullOrEmpty(entry.LinkName))
        {
            throw Reject(name, "is a symlink with an empty target");
        }
        if (kind == MemberKind.HardLink)
        {
            hardLinkTarget = ArchiveMemberPath.Normalize(entry.LinkName, name, "hard link target");
            if (hardLinkTarget.Length == 0)
            {
                throw Reject(name, "is a hard link to the archive root");
            }
        }
        CheckOwners(entry, name, options);

        bool setId = kind == MemberKind.RegularFile && (entry.Mode & (UnixFileMode.SetUser | UnixFileMode.SetGroup)) != 0;
        if (setId && options.SetIdBits == SetIdBitsPolicy.Refuse)
        {
            throw Reject(name, $"has setuid/setgid bits (mode {Convert.ToString((int)entry.Mode, 8)}), which the policy refuses");
        }
        if (setId && options.SetIdBits == SetIdBitsPolicy.Strip && !gate.TryClearSetIdBits())
        {
            throw Reject(name, "has setuid/setgid bits in a mode field that cannot be rewritten");
        }
        bool skip = false;
        if (kind == MemberKind.Device)
        {
            if (options.DeviceNodes == DeviceNodePolicy.Refuse)
            {
                throw Reject(name, $"is a {(entry.EntryType == TarEntryType.BlockDevice ? "block" : "character")} device node, which the policy refuses");
            }
            skip = true;
        }
        return new ScannedMember(name, path, kind, hardLinkTarget, size, skip, setId);
    }

    private static MemberKind KindOf(TarEntry entry, string name) => entry.EntryType switch
    {
        TarEntryType.RegularFile or TarEntryType.V7RegularFile or TarEntryType.ContiguousFile => MemberKind.RegularFile,
        TarEntryType.Directory => MemberKind.Directory,
        TarEntryType.SymbolicLink => MemberKind.SymbolicLink,
        TarEntryType.HardLink => MemberKind.HardLink,
        TarEntryType.Fifo => MemberKind.Fifo,
        TarEntryType.CharacterDevice or TarEntryType.BlockDevice => MemberKind.Device,
        TarEntryType.MultiVolume => throw Reject(name, "is a GNU multi-volume continuation member (type 'M'); multi-volume archives are not accepted"),
        TarEntryType.TapeVolume => throw Reject(name, "is a GNU volume label (type 'V'), which restore does not accept"),
        TarEntryType.DirectoryList => throw Reject(name, "is a GNU incremental dump directory (type 'D'), which restore does not accept"),
        _ => throw Reject(name, $"has member type '{(char)entry.EntryType}' ({entry.EntryType}), which restore does not accept"),
    };

    private static void CheckLayout(TarEntry entry, ValidationGate gate, string name)
    {
        // What TarReader parsed must be the header the raw walk found right before the member's data.
        if (gate.MainHeaderEnd != gate.Position || gate.MainType != (char)entry.EntryType)
        {
            throw Reject(name, $"has a header layout TarReader and the raw walk disagree on (type '{gate.MainType}' ending at {gate.MainHeaderEnd}, reader at {gate.Position})");
        }
    }

    private static void CheckMetadataChain(ValidationGate gate, string name)
    {
        IReadOnlyList<char> chain = gate.MetadataChain;
        bool pax = chain.Contains('x');
        bool gnu = chain.Contains('L') || chain.Contains('K');
        if ((pax && gnu) || chain.Count(c => c == 'x') > 1 || chain.Count(c => c == 'L') > 1 || chain.Count(c => c == 'K') > 1)
        {
            // GNU tar and TarReader may resolve repeated or mixed long-name headers differently.
            throw Reject(name, $"carries an ambiguous metadata header sequence ({string.Join(',', chain)})");
        }
    }

    private static void CheckPaxKeywords(IReadOnlyDictionary<string, string> pax, MemberKind kind, string name)
    {
        foreach (string key in pax.Keys)
        {
            if (key.StartsWith("GNU.volume.", StringComparison.Ordinal) || key.StartsWith("SCHILY.offset", StringComparison.Ordinal)
                || key == "SCHILY.realsize")
            {
                throw Reject(name, $"carries the multi-volume pax record '{key}'; multi-volume archives are not accepted");
            }
            if (key == "GNU.dumpdir")
            {
                throw Reject(name, "carries a GNU incremental dump directory record, which restore does not accept");
            }
            if (key.StartsWith("GNU.sparse.", StringComparison.Ordinal) && kind != MemberKind.RegularFile)
            {
                throw Reject(name, $"is a {ArchiveTree.Describe(kind)} but carries the sparse-file record '{key}'");
            }
        }
    }

    private static long CheckSizes(TarEntry entry, ValidationGate gate, IReadOnlyDictionary<string, string> pax, MemberKind kind, string name,
        TarValidationOptions options)
    {
        if (kind != MemberKind.RegularFile)
        {
            if (entry.Length != 0 || gate.MainSize != 0)
            {
                throw Reject(name, $"is a {ArchiveTree.Describe(kind)} but declares {Math.Max(entry.Length, gate.MainSize)} bytes of data");
            }
            return 0;
        }
        long size = entry.Length;
        foreach (string key in (string[])["GNU.sparse.realsize", "GNU.sparse.size"])
        {
            if (pax.TryGetValue(key, out string? text))
            {
                if (!long.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out long realSize))
                {
                    throw Reject(name, $"has an unreadable {key} '{text}'");
                }
                size = Math.Max(size, realSize);
            }
        }
        if (size > options.MaxMemberSize)
        {
            throw Reject(name, $"declares {size} bytes, more than the limit of {options.MaxMemberSize} bytes per member");
        }
        return size;
    }

    private static void CheckOwners(TarEntry entry, string name, TarValidationOptions options)
    {
        if (entry.Uid < 0 || entry.Gid < 0)
        {
            throw Reject(name, $"has a negative owner ({entry.Uid}:{entry.Gid})");
        }
        IdMap? map = options.IdMap;
        if (map is null || map.IsPrivileged)
        {
            return;
        }
        if (!map.TryMapToHost(IdKind.User, (uint)entry.Uid, out _))
        {
            throw Reject(name, $"is owned by uid {entry.Uid}, which the container's id map ({map}) does not cover");
        }
        if (!map.TryMapToHost(IdKind.Group, (uint)entry.Gid, out _))
        {
            throw Reject(name, $"is owned by gid {entry.Gid}, which the container's id map ({map}) does not cover");
        }
    }

    private static TarArchiveRejectedException Reject(string name, string reason) => new($"member '{name}' {reason}", name);
}
