namespace Grpc.Backup.Tests.Infrastructure;

/// <summary>
/// Python stubs generated from protos/ alone with Debian's protoc and grpc_python_plugin, and Debian's python3 to run
/// a client with them: the proof that another language's standard tooling is enough to speak the protocol.
/// </summary>
internal static class PythonClient
{
    public const string Python = "/usr/bin/python3";

    private static readonly Lazy<Task<string>> Stubs = new(GenerateAsync);

    /// <summary>A directory holding backup/provider/v1/*_pb2*.py, world-readable so another uid can import it.</summary>
    public static Task<string> GetStubsDirectoryAsync() => Stubs.Value;

    public static async Task<(int ExitCode, string Stdout, string Stderr)> RunAsync(string script, string[] arguments,
        IEnumerable<string>? prefix = null)
    {
        string stubs = await GetStubsDirectoryAsync();
        string scriptPath = Path.Combine(stubs, $"script-{Guid.NewGuid():N}.py");
        await File.WriteAllTextAsync(scriptPath, script);
        File.SetUnixFileMode(scriptPath, (UnixFileMode)0b110_100_100);
        try
        {
            var command = (prefix ?? []).Concat([Python, scriptPath]).Concat(arguments).ToList();
            return await ChildProcess.RunAsync(command[0], command.Skip(1),
                new Dictionary<string, string?> { ["PYTHONPATH"] = stubs, ["PYTHONDONTWRITEBYTECODE"] = "1" });
        }
        finally
        {
            File.Delete(scriptPath);
        }
    }

    private static async Task<string> GenerateAsync()
    {
        string output = Path.Combine(Path.GetTempPath(), $"gbt-pystubs-{Environment.ProcessId}");
        Directory.CreateDirectory(output);
        File.SetUnixFileMode(output, (UnixFileMode)0b111_101_101);
        string[] protos = Directory.GetFiles(Path.Combine(RepoPaths.Protos, "backup", "provider", "v1"), "*.proto");
        var (exitCode, _, stderr) = await ChildProcess.RunAsync("protoc",
            ["-I", RepoPaths.Protos, "--python_out", output, "--grpc_out", output,
             "--plugin=protoc-gen-grpc=/usr/bin/grpc_python_plugin", .. protos]);
        if (exitCode != 0)
        {
            throw new InvalidOperationException("protoc failed: " + stderr);
        }
        foreach (string file in Directory.EnumerateFileSystemEntries(output, "*", SearchOption.AllDirectories))
        {
            File.SetUnixFileMode(file, Directory.Exists(file) ? (UnixFileMode)0b111_101_101 : (UnixFileMode)0b110_100_100);
        }
        AppDomain.CurrentDomain.ProcessExit += (_, _) =>
        {
            try
            {
                Directory.Delete(output, recursive: true);
            }
            catch (IOException)
            {
            }
        };
        return output;
    }
}
