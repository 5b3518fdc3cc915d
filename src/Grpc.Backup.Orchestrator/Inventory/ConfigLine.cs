namespace Grpc.Backup.Orchestrator.Inventory;

/// <summary>One <c>key: value</c> line of a configuration file, with where it came from.</summary>
internal readonly record struct ConfigLine(string File, int Number, string Key, string Value)
{
    public ConfigException Error(string reason) => new(File, Number, reason);

    /// <summary>
    /// Reads a file of <c>key: value</c> lines; <c>#</c> starts a comment line and blank lines are skipped. The format
    /// is the one Proxmox guest configs use, so administrators know it, and every error can name its line.
    /// </summary>
    public static IReadOnlyList<ConfigLine> Parse(string file, string text)
    {
        var lines = new List<ConfigLine>();
        string[] raw = text.Split('\n');
        for (int i = 0; i < raw.Length; i++)
        {
            string line = raw[i].TrimEnd('\r');
            string trimmed = line.Trim();
            if (trimmed.Length == 0 || trimmed.StartsWith('#'))
            {
                continue;
            }
            int colon = trimmed.IndexOf(':', StringComparison.Ordinal);
            if (colon <= 0)
            {
                throw new ConfigException(file, i + 1, $"expected 'key: value', got '{Shorten(trimmed)}'");
            }
            string key = trimmed[..colon].Trim();
            if (!key.All(c => char.IsAsciiLetterOrDigit(c) || c is '-' or '_'))
            {
                throw new ConfigException(file, i + 1, $"invalid key '{Shorten(key)}'");
            }
            lines.Add(new ConfigLine(file, i + 1, key, trimmed[(colon + 1)..].Trim()));
        }
        return lines;
    }

    /// <summary>Splits <c>first k=v k=v</c> into the first word and its options; duplicate or malformed options fail.</summary>
    public (string First, IReadOnlyDictionary<string, string> Options) SplitOptions()
    {
        string[] words = Value.Split(' ', StringSplitOptions.RemoveEmptyEntries);
        if (words.Length == 0)
        {
            throw Error($"'{Key}' needs a value");
        }
        var options = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (string word in words.Skip(1))
        {
            int eq = word.IndexOf('=', StringComparison.Ordinal);
            if (eq <= 0 || eq == word.Length - 1)
            {
                throw Error($"expected key=value, got '{Shorten(word)}'");
            }
            if (!options.TryAdd(word[..eq], word[(eq + 1)..]))
            {
                throw Error($"option '{word[..eq]}' given twice");
            }
        }
        return (words[0], options);
    }

    private static string Shorten(string text) => text.Length <= 60 ? text : text[..60] + "…";
}
