using System.Text.Json;

namespace Grpc.Backup.Service.Tests.Infrastructure;

/// <summary>
/// grpc-backupd as a real process over a private configuration directory (host.conf, guests/, storages/, jobs/), with
/// its state, runtime directory and management socket in a temp directory; and the grpc-backup CLI pointed at it.
/// </summary>
internal sealed class ServiceProcess : IAsyncDisposable
{
    private ServiceProcess(TempDirectory root)
    {
        Root = root;
        Directory.CreateDirectory(ConfigDirectory);
        foreach (string sub in (string[])["guests", "storages", "jobs"])
        {
            Directory.CreateDirectory(Path.Combine(ConfigDirectory, sub));
        }
    }

    public TempDirectory Root { get; }

    public string ConfigDirectory => Root.File("config");

    public string StateDirectory => Root.File("state");

    public string FleecingDirectory => Root.File("fleece");

    public string SocketPath => Root.File("s.sock");

    public ChildProcess? Process { get; private set; }

    /// <summary>The stderr of every service process started so far (for failure messages).</summary>
    public string Log => _previousLogs + Process?.StandardError;

    private string _previousLogs = "";

    public static ServiceProcess Create() => new(new TempDirectory());

    public static string ServiceDll => Path.Combine(RepoPaths.Root, "src", "Grpc.Backup.Service", "bin", RepoPaths.Configuration, "net10.0", "grpc-backupd.dll");

    public static string CliDll => Path.Combine(RepoPaths.Root, "src", "Grpc.Backup.Cli", "bin", RepoPaths.Configuration, "net10.0", "grpc-backup.dll");

    public void WriteConfig(string relativePath, string text) => File.WriteAllText(Path.Combine(ConfigDirectory, relativePath), text);

    /// <summary>Copies a demo guest's inventory file into guests/.</summary>
    public void AddGuest(DemoGuestProcess guest, string id = "100") =>
        File.Copy(Path.Combine(guest.InventoryDirectory, id + ".conf"), Path.Combine(ConfigDirectory, "guests", id + ".conf"), overwrite: true);

    public void AddDirectoryStorage(string name, DirectoryProviderProcess provider) =>
        WriteConfig($"storages/{name}.conf", $"endpoint: {provider.Endpoint}\n");

    /// <summary>The per-guest locks (private to the test, so parallel tests' guests "100" never meet).</summary>
    public string LockDirectory => Root.File("locks");

    public string[] Arguments => ["--config", ConfigDirectory, "--state", StateDirectory, "--runtime", Root.File("run"), "--lock-dir", LockDirectory, "--socket", SocketPath];

    /// <param name="environment">Extra variables for the service (a test seam's, e.g. TestPausePoint's).</param>
    public async Task StartAsync(IDictionary<string, string?>? environment = null)
    {
        // The test guest's agent hashes every disk while frozen, to record the instant; on a loaded machine that takes
        // longer than a real agent's freeze, and a crash-consistent fallback would make the recorded instant stale.
        string hostConf = Path.Combine(ConfigDirectory, "host.conf");
        if (!File.Exists(hostConf) || !File.ReadAllText(hostConf).Contains("agent-timeout:", StringComparison.Ordinal))
        {
            File.AppendAllText(hostConf, "agent-timeout: 120\n");
        }
        Process = ChildProcess.Start("dotnet", [ServiceDll, .. Arguments], environment);
        await Process.WaitForFileAsync(SocketPath, TimeSpan.FromSeconds(60));
        // The socket exists from bind; wait until the service answers.
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(30);
        while ((await CliAsync("status")).ExitCode != 0)
        {
            Assert.True(DateTime.UtcNow < deadline, "the service did not answer:\n" + Process.StandardError);
            await Task.Delay(100);
        }
    }

    /// <summary>SIGKILL, as a crash: no teardown, no cleanup, the socket file stays.</summary>
    public async Task KillAsync()
    {
        if (Process is not null)
        {
            await Process.DisposeAsync();
            _previousLogs += Process.StandardError + "\n--- killed ---\n";
            Process = null;
        }
    }

    /// <summary>Runs <c>grpc-backup ARGS --socket S</c> to its end.</summary>
    public Task<(int ExitCode, string Stdout, string Stderr)> CliAsync(params string[] args) =>
        ChildProcess.RunAsync("dotnet", [CliDll, .. args, "--socket", SocketPath], timeout: TimeSpan.FromMinutes(3));

    public async Task<JsonElement> CliJsonAsync(params string[] args)
    {
        var (exit, stdout, stderr) = await CliAsync([.. args, "--json"]);
        Assert.True(exit == 0, $"grpc-backup {string.Join(' ', args)} exited {exit}: {stderr}\n{stdout}\n{Log}");
        using var document = JsonDocument.Parse(stdout);
        return document.RootElement.Clone();
    }

    /// <summary>SIGTERM, as systemd stops it: running tasks are cancelled and finish their teardown first.</summary>
    public async Task StopAsync()
    {
        if (Process is not null)
        {
            Process.Terminate();
            try
            {
                await Process.WaitForExitAsync(TimeSpan.FromSeconds(60));
            }
            catch (OperationCanceledException)
            {
            }
            await Process.DisposeAsync();
            _previousLogs += Process.StandardError + "\n--- stopped ---\n";
            Process = null;
        }
    }

    public async ValueTask DisposeAsync()
    {
        await StopAsync();
        Root.Dispose();
    }
}
