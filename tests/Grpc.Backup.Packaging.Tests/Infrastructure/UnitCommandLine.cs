namespace Grpc.Backup.Packaging.Tests.Infrastructure;

/// <summary>A unit's <c>ExecStart=</c> as the tests run it: this checkout's program, the host's paths re-rooted.</summary>
internal static class UnitCommandLine
{
    /// <summary>
    /// ExecStart= split as systemd splits an unquoted command line, with the specifiers the units use expanded to the
    /// directories systemd would make for the run; the installed program is swapped for the built one.
    /// </summary>
    public static IEnumerable<string> ExecStart(SystemdUnit serviceUnit, string root, SidecarEnvironment? environment)
    {
        string line = serviceUnit.Single("Service", "ExecStart");
        if (line.IndexOfAny(['"', '\'', '\\']) >= 0 || line[0] is '-' or '+' or '!' or '@' or ':')
        {
            throw new FormatException($"{serviceUnit.Name}: ExecStart= uses quoting or a prefix this test does not follow: {line}");
        }
        string[] words = line.Split(' ', StringSplitOptions.RemoveEmptyEntries);
        yield return InstalledLayout.BuiltProgram(words[0])
            ?? throw new InvalidOperationException($"{serviceUnit.Name}: ExecStart= names {words[0]}, which build/install does not install");
        foreach (string word in words.Skip(1))
        {
            string expanded = word
                .Replace("${CREDENTIALS_DIRECTORY}", environment?.CredentialsDirectory ?? "", StringComparison.Ordinal)
                .Replace("%d", environment?.CredentialsDirectory ?? "", StringComparison.Ordinal)
                .Replace("${STATE_DIRECTORY}", environment?.StateDirectory ?? "", StringComparison.Ordinal)
                .Replace("${RUNTIME_DIRECTORY}", environment?.RuntimeDirectory ?? "", StringComparison.Ordinal);
            // A path of the unit that is not one systemd made for this run is a path of the host: re-rooted.
            yield return expanded == word && word.StartsWith('/') ? SocketActivatedSidecar.Rerooted(root, word) : expanded;
        }
    }
}
