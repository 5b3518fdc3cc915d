namespace Grpc.Backup.Tests.Infrastructure;

/// <summary>
/// The real guest's manifest port as the host received it: blocks of "BEGIN NAME", "SHA256  dataN/PATH" lines and
/// "END NAME", one per freeze (freeze-1, freeze-2, ...) and one per poweroff (shutdown). A block without its END is
/// still being written.
/// </summary>
internal sealed class GuestManifestLog(string path)
{
    /// <summary>The names of the complete blocks, in order.</summary>
    public IReadOnlyList<string> Names() => [.. Blocks().Select(b => b.Name)];

    public int FreezeCount => Names().Count(n => n.StartsWith("freeze-", StringComparison.Ordinal));

    /// <summary>The files (dataN/PATH to sha256) of the last complete block named <paramref name="name"/>, waiting for it.</summary>
    public async Task<IReadOnlyDictionary<string, string>> WaitForAsync(string name, TimeSpan bound)
    {
        var deadline = DateTime.UtcNow + bound;
        while (true)
        {
            if (Blocks().LastOrDefault(b => b.Name == name) is { } block)
            {
                return block.Files;
            }
            if (DateTime.UtcNow > deadline)
            {
                throw new TimeoutException($"no complete manifest '{name}' within {bound}; have [{string.Join(' ', Names())}]");
            }
            await Task.Delay(100);
        }
    }

    private List<(string Name, Dictionary<string, string> Files)> Blocks()
    {
        var blocks = new List<(string, Dictionary<string, string>)>();
        if (!File.Exists(path))
        {
            return blocks;
        }
        string? open = null;
        Dictionary<string, string> files = [];
        foreach (string line in File.ReadLines(path))
        {
            if (line.StartsWith("BEGIN ", StringComparison.Ordinal))
            {
                open = line["BEGIN ".Length..];
                files = new Dictionary<string, string>(StringComparer.Ordinal);
            }
            else if (line.StartsWith("END ", StringComparison.Ordinal))
            {
                if (open == line["END ".Length..])
                {
                    blocks.Add((open, files));
                }
                open = null;
            }
            else if (open is not null && line.Length > 66 && line[64] == ' ' && line[65] == ' ')
            {
                files[line[66..]] = line[..64];
            }
        }
        return blocks;
    }
}
