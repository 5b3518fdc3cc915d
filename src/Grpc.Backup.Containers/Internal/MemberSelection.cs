namespace Grpc.Backup.Containers.Internal;

/// <summary>
/// The members a file restore wants: the given paths and everything under them (canonical paths; "" is the whole
/// tree). It also says when the selection is complete: GNU tar writes a directory's members right after it (a depth-first
/// walk), so once every selected path was seen and a member outside all of them comes, the rest of the archive need
/// not be read. An archive that scatters a directory's members (not one GNU tar wrote) then gives fewer members,
/// never other ones.
/// </summary>
internal sealed class MemberSelection
{
    private readonly string[] _roots;
    private readonly HashSet<string> _unseen;
    private readonly HashSet<string> _forwarded = new(StringComparer.Ordinal);

    public MemberSelection(IEnumerable<string> roots)
    {
        _roots = [.. roots.Distinct(StringComparer.Ordinal)];
        // The root itself needs no member of its own: tar creates it.
        _unseen = new HashSet<string>(_roots.Where(r => r.Length > 0), StringComparer.Ordinal);
    }

    /// <summary>Selected paths that no member was at or under, in the order given.</summary>
    public IEnumerable<string> Unseen => _roots.Where(_unseen.Contains);

    public bool Includes(string path) => _roots.Any(root => IsAtOrUnder(path, root));

    /// <summary>True when every selected path was seen and <paramref name="path"/> is outside them all.</summary>
    public bool IsCompleteBefore(string path) => _unseen.Count == 0 && !Includes(path);

    public void Seen(string path) => _unseen.RemoveWhere(root => IsAtOrUnder(path, root));

    /// <summary>Remembers a member passed on, so a selected hard link can be checked for a target that was passed on too.</summary>
    public void Forwarded(string path) => _forwarded.Add(path);

    public bool WasForwarded(string path) => _forwarded.Contains(path);

    public static bool IsAtOrUnder(string path, string root) =>
        root.Length == 0 || path == root || (path.Length > root.Length && path[root.Length] == '/' && path.StartsWith(root, StringComparison.Ordinal));
}
