namespace Grpc.Backup.Containers.Internal;

/// <summary>
/// Canonical member paths: "./etc//passwd" and "etc/passwd" are the same file to GNU tar, so every check is made on
/// one spelling. Absolute paths and ".." are refused outright rather than rewritten (GNU tar would strip them with a
/// warning and extract somewhere other than the archive says).
/// </summary>
internal static class ArchiveMemberPath
{
    /// <summary>The canonical path ("" is the archive root, i.e. the target directory itself).</summary>
    public static string Normalize(string name, string member, string what)
    {
        if (name.Length == 0)
        {
            throw new TarArchiveRejectedException($"member '{member}': empty {what}", member);
        }
        if (name[0] == '/')
        {
            throw new TarArchiveRejectedException($"member '{member}': {what} '{name}' is an absolute path", member);
        }
        string[] parts = name.Split('/', StringSplitOptions.RemoveEmptyEntries);
        if (parts.Contains(".."))
        {
            throw new TarArchiveRejectedException($"member '{member}': {what} '{name}' contains '..' (path traversal)", member);
        }
        return string.Join('/', parts.Where(p => p != "."));
    }

    /// <summary>
    /// A path a user asked for, as the archive spells it: "/etc/passwd", "etc/passwd" and "./etc/" name members
    /// canonically "etc/passwd" and "etc"; "/" and "." are the whole tree (""). ".." is refused.
    /// </summary>
    /// <exception cref="ArgumentException">The path contains "..".</exception>
    public static string NormalizeRequested(string path)
    {
        string[] parts = path.Split('/', StringSplitOptions.RemoveEmptyEntries);
        if (parts.Contains(".."))
        {
            throw new ArgumentException($"'{path}' contains '..'; name a path inside the archive");
        }
        return string.Join('/', parts.Where(p => p != "."));
    }

    /// <summary>The parent of a canonical path ("" for a top-level member); null for the root itself.</summary>
    public static string? Parent(string path)
    {
        if (path.Length == 0)
        {
            return null;
        }
        int slash = path.LastIndexOf('/');
        return slash < 0 ? "" : path[..slash];
    }

    /// <summary>Every proper ancestor of a canonical path, outermost first ("a", "a/b" for "a/b/c"); never the root.</summary>
    public static IEnumerable<string> Ancestors(string path)
    {
        for (int slash = path.IndexOf('/', StringComparison.Ordinal); slash >= 0; slash = path.IndexOf('/', slash + 1))
        {
            yield return path[..slash];
        }
    }
}
