using System.Text.RegularExpressions;

namespace Grpc.Backup.Conformance.Tests.Infrastructure;

/// <summary>One run of grpc-backup-conformance as a real process: its exit code and its table, line by line.</summary>
internal sealed partial record ConformanceRun(int ExitCode, string Stdout, string Stderr)
{
    public static async Task<ConformanceRun> RunAsync(string endpoint, params string[] extraArguments)
    {
        var (exitCode, stdout, stderr) = await ChildProcess.RunAsync("dotnet", [RepoPaths.ConformanceDll, "--provider", endpoint, .. extraArguments],
            // A hang bound: a whole kit run takes 2-4 minutes on a quiet machine and passed 12 under a load average of 50.
            timeout: TimeSpan.FromMinutes(30));
        return new ConformanceRun(exitCode, stdout, stderr);
    }

    /// <summary>The outcome column (PASS, FAIL, SKIP) of the check named <paramref name="check"/>; null when it did not run.</summary>
    public string? Outcome(string check) =>
        Row().Matches(Stdout).Where(m => m.Groups["check"].Value == check).Select(m => m.Groups["outcome"].Value).SingleOrDefault();

    public IEnumerable<string> Checks(string outcome) =>
        Row().Matches(Stdout).Where(m => m.Groups["outcome"].Value == outcome).Select(m => m.Groups["check"].Value);

    public override string ToString() => $"exit {ExitCode}\n{Stdout}\n{Stderr}";

    [GeneratedRegex(@"^(?<outcome>PASS|FAIL|SKIP) +(?<check>[a-z0-9.-]+) ", RegexOptions.Multiline)]
    private static partial Regex Row();
}
