using System.Security.Cryptography;

namespace Grpc.Backup.Containers.Tests;

/// <summary>
/// What a tree looks like, path by path: type, mode (with setuid/sticky bits), numeric owner, size (not for
/// directories), link count (not for directories) and symlink target, plus a hash of each regular file.
/// </summary>
internal static class TreeListing
{
    private const string Format = "%P\t%y\t%m\t%U\t%G\t%s\t%n\t%l\n";

    /// <summary>The host's view, as root.</summary>
    public static Dictionary<string, string> OnHost(string root) => Parse(Host.Run("find", root, "-mindepth", "1", "-printf", Format), root);

    /// <summary>
    /// The view from inside a namespace (container ids) of <paramref name="root"/>, as the namespace reaches it;
    /// file contents are read on the host at <paramref name="hostRoot"/> (the same tree, when it is bound elsewhere there).
    /// </summary>
    public static async Task<Dictionary<string, string>> InNamespaceAsync(UserNamespace ns, string root, string? hostRoot = null) =>
        Parse(await Host.RunInAsync(ns, "find", root, "-mindepth", "1", "-printf", Format), hostRoot ?? root);

    private static Dictionary<string, string> Parse(string output, string root)
    {
        var listing = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (string line in output.Split('\n', StringSplitOptions.RemoveEmptyEntries))
        {
            string[] fields = line.Split('\t');
            if (fields[1] == "d")
            {
                // A directory's size is file-system specific and its link count only counts subdirectories.
                fields[5] = "-";
                fields[6] = "-";
            }
            if (fields[1] == "f")
            {
                fields[7] = Convert.ToHexString(SHA256.HashData(File.ReadAllBytes(Path.Combine(root, fields[0]))));
            }
            listing[fields[0]] = string.Join(' ', fields[1..]);
        }
        return listing;
    }

    /// <summary>The owner "uid:gid" of one entry in a listing.</summary>
    public static string Owner(Dictionary<string, string> listing, string path)
    {
        string[] fields = listing[path].Split(' ');
        return $"{fields[2]}:{fields[3]}";
    }
}
