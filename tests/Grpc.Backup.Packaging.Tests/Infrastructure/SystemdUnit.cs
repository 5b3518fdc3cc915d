namespace Grpc.Backup.Packaging.Tests.Infrastructure;

/// <summary>
/// A unit file of build/systemd read the way systemd reads the parts the tests follow: <c>[Section]</c> headers,
/// <c>Key=Value</c> lines (a key may repeat), <c>#</c> and <c>;</c> comments. Continuation lines are refused, because no
/// unit here uses them and a silent misread would make a test follow a different unit than systemd.
/// </summary>
internal sealed class SystemdUnit
{
    private readonly List<(string Section, string Key, string Value)> _entries;

    private SystemdUnit(string path, List<(string, string, string)> entries)
    {
        Path = path;
        _entries = entries;
    }

    public string Path { get; }

    public string Name => System.IO.Path.GetFileName(Path);

    public static string Directory => System.IO.Path.Combine(RepoPaths.Root, "build", "systemd");

    public static SystemdUnit Load(string name)
    {
        string path = System.IO.Path.Combine(Directory, name);
        var entries = new List<(string, string, string)>();
        string? section = null;
        int number = 0;
        foreach (string raw in File.ReadLines(path))
        {
            number++;
            string line = raw.Trim();
            if (line.Length == 0 || line[0] is '#' or ';')
            {
                continue;
            }
            if (line.EndsWith('\\'))
            {
                throw new FormatException($"{name}:{number}: continuation lines are not supported by this reader");
            }
            if (line[0] == '[' && line[^1] == ']')
            {
                section = line[1..^1];
                continue;
            }
            int equals = line.IndexOf('=', StringComparison.Ordinal);
            if (equals <= 0 || section is null)
            {
                throw new FormatException($"{name}:{number}: expected Key=Value inside a section: {raw}");
            }
            entries.Add((section, line[..equals].Trim(), line[(equals + 1)..].Trim()));
        }
        return new SystemdUnit(path, entries);
    }

    /// <summary>Every value of a key, in file order.</summary>
    public IReadOnlyList<string> All(string section, string key) =>
        _entries.Where(e => e.Section == section && e.Key == key).Select(e => e.Value).ToList();

    /// <summary>The value of a key that must appear exactly once.</summary>
    public string Single(string section, string key)
    {
        IReadOnlyList<string> values = All(section, key);
        return values.Count == 1 ? values[0] : throw new InvalidOperationException($"{Name}: [{section}] {key}= appears {values.Count} times, expected once");
    }

    /// <summary>The value of a key that may appear at most once.</summary>
    public string? Optional(string section, string key)
    {
        IReadOnlyList<string> values = All(section, key);
        return values.Count switch
        {
            0 => null,
            1 => values[0],
            _ => throw new InvalidOperationException($"{Name}: [{section}] {key}= appears {values.Count} times"),
        };
    }

    public bool IsYes(string section, string key) => Optional(section, key) is "yes" or "true" or "1" or "on";
}
