namespace Grpc.Backup.Containers.Internal;

/// <summary>How a finished child process ended, with its captured output.</summary>
internal sealed record ProcessResult(string Command, int ExitCode, string StandardOutput, string StandardError)
{
    /// <summary>The command, its exit code and its stderr, for an error message.</summary>
    public string Describe() =>
        $"'{Command}' exited with {ExitCode}{(StandardError.Length == 0 ? "" : ": " + StandardError.Trim())}";

    /// <summary>The non-empty lines of stderr, e.g. tar's per-file warnings.</summary>
    public IReadOnlyList<string> ErrorLines() =>
        StandardError.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
}
