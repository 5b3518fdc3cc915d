namespace Grpc.Backup.Protocol;

/// <summary>
/// The archive-name rules of protos/README.md "Archive names". A provider chooses the name, so the host checks it
/// before it ever uses it in a path, a log line or a catalog key.
/// </summary>
public static class ArchiveName
{
    /// <summary>The longest valid name, in bytes (all valid characters are ASCII).</summary>
    public const int MaxLength = 255;

    /// <summary>Returns null when <paramref name="name"/> is valid, or why it is not.</summary>
    public static string? Check(string? name)
    {
        if (string.IsNullOrEmpty(name))
        {
            return "the archive name is empty";
        }
        if (name.Length > MaxLength)
        {
            return $"the archive name is {name.Length} bytes long; at most {MaxLength} are allowed";
        }
        foreach (char c in name)
        {
            if (!IsAllowed(c))
            {
                return $"the archive name contains the character U+{(int)c:X4}; only [A-Za-z0-9._+=:/-] are allowed";
            }
        }
        if (name[0] == '/')
        {
            return "the archive name starts with '/'";
        }
        foreach (string segment in name.Split('/'))
        {
            if (segment.Length == 0 || segment == "." || segment == "..")
            {
                return $"the archive name has an empty, '.' or '..' path segment: '{name}'";
            }
        }
        return null;
    }

    /// <summary>True when <paramref name="name"/> follows the rules.</summary>
    public static bool IsValid(string? name) => Check(name) is null;

    private static bool IsAllowed(char c) =>
        c is (>= 'a' and <= 'z') or (>= 'A' and <= 'Z') or (>= '0' and <= '9')
            or '.' or '_' or '+' or '=' or ':' or '/' or '-';
}
