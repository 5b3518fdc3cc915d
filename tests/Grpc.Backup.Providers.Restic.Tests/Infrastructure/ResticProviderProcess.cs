using Grpc.Backup.Protocol;
using Grpc.Backup.Tests.Infrastructure;

namespace Grpc.Backup.Providers.Restic.Tests.Infrastructure;

/// <summary>
/// The Python restic provider as a real process, unprivileged (uid/gid 65534 through setpriv), on a restic repository
/// and state directory it owns inside a private temp directory. The password reaches it only as a file.
/// </summary>
internal sealed class ResticProviderProcess : IAsyncDisposable
{
    public const int Uid = 65534;

    private static readonly SemaphoreSlim StubsOnce = new(1, 1);
    private static bool _stubsReady;
    private readonly TempDirectory _directory;

    private ResticProviderProcess(TempDirectory directory, ChildProcess process, ProviderEndpoint endpoint)
    {
        _directory = directory;
        Process = process;
        Endpoint = endpoint;
    }

    public ChildProcess Process { get; private set; }

    public ProviderEndpoint Endpoint { get; }

    public string Repository => _directory.File("repo");

    public string PasswordFile => _directory.File("password");

    public static async Task<ResticProviderProcess> StartAsync()
    {
        await EnsureStubsAsync();
        var directory = new TempDirectory();
        try
        {
            await File.WriteAllTextAsync(directory.File("password"), "correct horse battery staple\n");
            File.SetUnixFileMode(directory.File("password"), UnixFileMode.UserRead);
            Directory.CreateDirectory(directory.File("state"));
            Directory.CreateDirectory(directory.File("run"));
            await RunCheckedAsync("chown", ["-R", $"{Uid}:{Uid}", directory.Path]);
            await RunCheckedAsync("setpriv", [.. AsProvider, "/usr/bin/restic", "init", "--no-cache", "--repository-version", "2",
                "--repo", directory.File("repo"), "--password-file", directory.File("password")]);
        }
        catch
        {
            directory.Dispose();
            throw;
        }
        var endpoint = ProviderEndpoint.Parse("unix:" + directory.File("provider.sock"));
        var provider = new ResticProviderProcess(directory, Launch(directory, endpoint), endpoint);
        try
        {
            await provider.WaitUntilListeningAsync();
            return provider;
        }
        catch
        {
            await provider.DisposeAsync();
            throw;
        }
    }

    /// <summary>The arguments of setpriv that drop to the provider's uid, gid and no supplementary groups.</summary>
    public static string[] AsProvider => [$"--reuid={Uid}", $"--regid={Uid}", "--clear-groups", "--"];

    /// <summary>Runs restic on the provider's repository as the provider's user (the test's view of the repository).</summary>
    public async Task<string> ResticAsync(params string[] arguments)
    {
        var (exitCode, stdout, stderr) = await ChildProcess.RunAsync("setpriv",
            [.. AsProvider, "/usr/bin/restic", "--no-cache", "--repo", Repository, "--password-file", PasswordFile, .. arguments]);
        Assert.True(exitCode == 0, stderr);
        return stdout;
    }

    public async Task KillAndRestartAsync()
    {
        await Process.DisposeAsync();
        File.Delete(Endpoint.SocketPath);
        File.Delete(Endpoint.SidebandPath);
        Process = Launch(_directory, Endpoint);
        await WaitUntilListeningAsync();
    }

    private static ChildProcess Launch(TempDirectory directory, ProviderEndpoint endpoint) => ChildProcess.Start("setpriv",
        [.. AsProvider, RepoPaths.ResticProvider, "--listen", endpoint.ToString(), "--repository", directory.File("repo"),
         "--password-file", directory.File("password"), "--state-directory", directory.File("state"),
         "--runtime-directory", directory.File("run")]);

    private static async Task EnsureStubsAsync()
    {
        await StubsOnce.WaitAsync();
        try
        {
            if (!_stubsReady)
            {
                await RunCheckedAsync(RepoPaths.ResticStubGenerator, []);
                _stubsReady = true;
            }
        }
        finally
        {
            StubsOnce.Release();
        }
    }

    private static async Task RunCheckedAsync(string command, string[] arguments)
    {
        var (exitCode, stdout, stderr) = await ChildProcess.RunAsync(command, arguments);
        if (exitCode != 0)
        {
            throw new InvalidOperationException($"{command} failed ({exitCode}): {stdout}{stderr}");
        }
    }

    private async Task WaitUntilListeningAsync()
    {
        await Process.WaitForFileAsync(Endpoint.SidebandPath, TimeSpan.FromSeconds(30));
        await Process.WaitForFileAsync(Endpoint.SocketPath, TimeSpan.FromSeconds(30));
    }

    public async ValueTask DisposeAsync()
    {
        await Process.DisposeAsync();
        // For diagnosing a failure: RESTIC_PROVIDER_LOG=FILE collects the provider's stderr of every test.
        if (Environment.GetEnvironmentVariable("RESTIC_PROVIDER_LOG") is { Length: > 0 } log)
        {
            await File.AppendAllTextAsync(log, Process.StandardError);
        }
        _directory.Dispose();
    }
}
