namespace Grpc.Backup.Protocol.Containers;

/// <summary>
/// Translates vzdump <c>exclude-path</c> patterns into GNU tar options, as vzdump and Proxmox's DirectoryExample do:
/// <c>/tmp/?*</c> is anchored at the container root (<c>--anchored --exclude=./tmp/?*</c>, members are named
/// <c>./...</c>), any other pattern matches anywhere (<c>--no-anchored</c>). Exclusion matching in tar uses
/// wildcards that also match <c>/</c>, so <c>**</c> works as documented (it is the same as <c>*</c>).
/// <c>lost+found</c> is always excluded, like vzdump.
/// </summary>
public static class ExcludePatterns
{
    public static IReadOnlyList<string> ToTarArguments(IEnumerable<string> patterns)
    {
        ArgumentNullException.ThrowIfNull(patterns);
        var anchored = new List<string>();
        var anywhere = new List<string>();
        foreach (string pattern in patterns)
        {
            string normalized = Normalize(pattern);
            if (normalized[0] == '/')
            {
                anchored.Add("." + normalized);
            }
            else
            {
                anywhere.Add(normalized);
            }
        }
        anywhere.Add("lost+found");
        // --anchored/--no-anchored and the wildcard options apply to the --exclude options that follow them.
        var arguments = new List<string> { "--wildcards", "--wildcards-match-slash" };
        if (anchored.Count > 0)
        {
            arguments.Add("--anchored");
            arguments.AddRange(anchored.Select(p => "--exclude=" + p));
        }
        arguments.Add("--no-anchored");
        arguments.AddRange(anywhere.Select(p => "--exclude=" + p));
        return arguments;
    }

    private static string Normalize(string pattern)
    {
        ArgumentNullException.ThrowIfNull(pattern);
        if (pattern.Any(char.IsControl))
        {
            throw new ArgumentException($"exclude pattern '{pattern.ReplaceLineEndings(" ")}' contains a control character");
        }
        // Members never end in '/', so "/var/cache/" would match nothing; vzdump users mean the directory.
        string trimmed = pattern.Trim();
        bool isAnchored = trimmed.StartsWith('/');
        trimmed = trimmed.Trim('/');
        if (trimmed.Length == 0 || trimmed == "." || trimmed == "**" || trimmed == "*")
        {
            throw new ArgumentException(
                $"exclude pattern '{pattern}' would exclude the whole container; exclude its contents instead (e.g. '/dir/*')");
        }
        return isAnchored ? "/" + trimmed : trimmed;
    }
}
