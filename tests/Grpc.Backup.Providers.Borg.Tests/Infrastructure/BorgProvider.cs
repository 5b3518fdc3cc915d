using Grpc.Backup.Host;
using Grpc.Backup.Protocol;

namespace Grpc.Backup.Providers.Borg.Tests.Infrastructure;

/// <summary>
/// A repokey-encrypted borg repository and the Borg provider serving it as a real process running as uid nobody
/// (setpriv), with a host connection to it. The passphrase is in a file only nobody can read; the provider learns
/// its path, never its value. Disposing kills the provider's process tree and removes everything.
/// </summary>
internal sealed class BorgProvider : IAsyncDisposable
{
    public const string Passphrase = "pw-7f3c1e9a-correct-horse";
    public const int Nobody = 65534;

    private readonly TempDirectory _directory;
    private readonly string? _remoteRepository;
    private string[] _arguments;

    private BorgProvider(TempDirectory directory, string? remoteRepository, string[] arguments, ChildProcess process, ProviderConnection connection)
    {
        _directory = directory;
        _remoteRepository = remoteRepository;
        _arguments = arguments;
        Process = process;
        Connection = connection;
    }

    public ChildProcess Process { get; private set; }

    public ProviderConnection Connection { get; private set; }

    public ProviderEndpoint Endpoint => ProviderEndpoint.Parse("unix:" + _directory.File("p/provider.sock"));

    public string RepositoryPath => _directory.File("p/repo");

    /// <summary>What the provider was given as --repository: the local path, or the ssh:// URL.</summary>
    public string Repository => _remoteRepository ?? RepositoryPath;

    /// <summary>Adds provider arguments that name files of the provider's directory (from a prepare step).</summary>
    public void AddArguments(params string[] arguments) => _arguments = [.. _arguments, .. arguments];

    /// <summary>The provider's own directory (nobody's, 0700): secrets it reads live here.</summary>
    public string Private(string name) => _directory.File("p/" + name);

    public string StateDirectory => _directory.File("p/state");

    public string PassphraseFile => _directory.File("p/passphrase");

    /// <summary>Scratch space of the test (root's): images, export sockets.</summary>
    public string Work(string name) => _directory.File("work/" + name);

    public static Task<BorgProvider> StartAsync(params string[] extraArguments) =>
        StartAsync(remoteRepository: null, prepare: null, extraArguments);

    /// <summary>
    /// With a <paramref name="remoteRepository"/> (an ssh:// URL the caller initialised), no local repository is
    /// created. <paramref name="prepare"/> runs before the provider's directory is handed to nobody, to put files
    /// (keys) there that only the provider may read.
    /// </summary>
    public static async Task<BorgProvider> StartAsync(string? remoteRepository, Func<BorgProvider, Task>? prepare, params string[] extraArguments)
    {
        // Searchable by nobody, so the provider reaches its own directory p/ (0700, nobody's).
        var directory = new TempDirectory(UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute
            | UnixFileMode.GroupExecute | UnixFileMode.OtherExecute);
        try
        {
            System.IO.Directory.CreateDirectory(directory.File("work"));
            System.IO.Directory.CreateDirectory(directory.File("p/state"));
            await File.WriteAllTextAsync(directory.File("p/passphrase"), Passphrase + "\n");
            File.SetUnixFileMode(directory.File("p/passphrase"), UnixFileMode.UserRead);
            var provider = new BorgProvider(directory, remoteRepository, extraArguments, null!, null!);
            if (prepare is not null)
            {
                await prepare(provider);
            }
            await RunAsync("chown", "-R", $"{Nobody}:{Nobody}", directory.File("p"));
            File.SetUnixFileMode(directory.File("p"), UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
            if (remoteRepository is null)
            {
                (int exit, _, string stderr) = await provider.BorgAsync("init", "-e", "repokey", provider.RepositoryPath);
                Assert.True(exit == 0, stderr);
            }
            (provider.Process, provider.Connection) = await provider.LaunchAsync();
            return provider;
        }
        catch
        {
            directory.Dispose();
            throw;
        }
    }

    /// <summary>Kills the provider with SIGKILL and starts it again, optionally with other arguments.</summary>
    public async Task RestartAsync(params string[] arguments)
    {
        await Connection.DisposeAsync();
        await Process.DisposeAsync();
        if (arguments.Length > 0)
        {
            _arguments = arguments;
        }
        (Process, Connection) = await LaunchAsync();
    }

    /// <summary>Runs borg as nobody, with the provider's borg directory and passphrase, as an operator would.</summary>
    public Task<(int ExitCode, string Stdout, string Stderr)> BorgAsync(params string[] arguments) =>
        ChildProcess.RunAsync("setpriv", ["--reuid", $"{Nobody}", "--regid", $"{Nobody}", "--clear-groups", "--", "env", "-i",
            "PATH=/usr/bin:/bin", $"BORG_BASE_DIR={StateDirectory}/borg", $"HOME={StateDirectory}/borg",
            $"BORG_PASSCOMMAND=cat {PassphraseFile}", "borg", .. arguments], timeout: TimeSpan.FromMinutes(5));

    private async Task<(ChildProcess, ProviderConnection)> LaunchAsync()
    {
        ProviderEndpoint endpoint = Endpoint;
        File.Delete(endpoint.SocketPath);
        File.Delete(endpoint.SidebandPath);
        ChildProcess process = ChildProcess.Start("setpriv",
            ["--reuid", $"{Nobody}", "--regid", $"{Nobody}", "--clear-groups", "--", "env", $"HOME={StateDirectory}",
             $"DOTNET_CLI_HOME={StateDirectory}", "TZ=UTC", "dotnet", RepoPaths.BorgProviderDll, "--listen", endpoint.ToString(),
             "--repository", Repository, "--state-directory", StateDirectory, "--passphrase-file", PassphraseFile, .. _arguments]);
        try
        {
            await process.WaitForFileAsync(endpoint.SidebandPath, TimeSpan.FromSeconds(60));
            await process.WaitForFileAsync(endpoint.SocketPath, TimeSpan.FromSeconds(60));
            ProviderConnection connection = await ProviderConnection.ConnectAsync(endpoint, new ProviderConnectionOptions
            {
                UnaryDeadline = TimeSpan.FromMinutes(3),
            });
            return (process, connection);
        }
        catch
        {
            await process.DisposeAsync();
            throw;
        }
    }

    /// <summary>The borg processes the provider started (children of its dotnet process).</summary>
    public IReadOnlyList<int> BorgChildren() =>
        System.IO.Directory.EnumerateDirectories("/proc")
            .Select(d => int.TryParse(Path.GetFileName(d), out int pid) ? pid : 0)
            .Where(pid => pid > 0 && ParentOf(pid) == Process.Id && CommandLine(pid).Contains("borg", StringComparison.Ordinal))
            .ToList();

    public static string CommandLine(int pid) => Read($"/proc/{pid}/cmdline").Replace('\0', ' ');

    public static string Environment(int pid) => Read($"/proc/{pid}/environ").Replace('\0', '\n');

    private static int ParentOf(int pid)
    {
        string stat = Read($"/proc/{pid}/stat");
        int close = stat.LastIndexOf(')');
        return close > 0 && int.TryParse(stat[(close + 2)..].Split(' ')[1], out int parent) ? parent : 0;
    }

    private static string Read(string path)
    {
        try
        {
            return File.ReadAllText(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return "";
        }
    }

    private static async Task RunAsync(string program, params string[] arguments)
    {
        (int exit, _, string stderr) = await ChildProcess.RunAsync(program, arguments);
        Assert.True(exit == 0, $"{program} failed: {stderr}");
    }

    public async ValueTask DisposeAsync()
    {
        await Connection.DisposeAsync();
        await Process.DisposeAsync();
        _directory.Dispose();
    }
}
