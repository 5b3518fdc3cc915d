using Grpc.Backup.Protocol;

namespace Grpc.Backup.Tests.Infrastructure;

/// <summary>The directory provider running as a real process on a socket in a private temp directory.</summary>
internal sealed class DirectoryProviderProcess : IAsyncDisposable
{
    private readonly TempDirectory _directory;

    private readonly IReadOnlyList<string> _extraArguments;

    private DirectoryProviderProcess(TempDirectory directory, ChildProcess process, ProviderEndpoint endpoint, IReadOnlyList<string> extraArguments)
    {
        _directory = directory;
        _extraArguments = extraArguments;
        Process = process;
        Endpoint = endpoint;
    }

    public ChildProcess Process { get; private set; }

    public ProviderEndpoint Endpoint { get; }

    public string RepositoryPath => _directory.File("repo");

    /// <summary>Starts the provider with <c>--vm-mechanism</c> set to the protocol's name of <paramref name="mechanism"/>.</summary>
    public static Task<DirectoryProviderProcess> StartAsync(Protocol.V1.VmBackupMechanism mechanism) =>
        StartAsync(UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute,
            "--vm-mechanism", mechanism == Protocol.V1.VmBackupMechanism.FileHandle ? "file-handle" : "nbd");

    public static async Task<DirectoryProviderProcess> StartAsync(
        UnixFileMode directoryMode = UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute, params string[] extraArguments)
    {
        var directory = new TempDirectory(directoryMode);
        Directory.CreateDirectory(directory.File("repo"));
        var endpoint = ProviderEndpoint.Parse("unix:" + directory.File("provider.sock"));
        var provider = new DirectoryProviderProcess(directory, Launch(directory, endpoint, extraArguments), endpoint, extraArguments);
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

    /// <summary>Kills the provider with SIGKILL, as a crash would, and starts a new one on the same repository and socket.</summary>
    public Task KillAndRestartAsync() => RestartAsync();

    /// <summary>kill -9 of the provider's own process (a crash), waiting until it is gone; <see cref="RestartAsync"/> follows.</summary>
    public async Task KillAsync()
    {
        Process.Signal("KILL");
        await Process.WaitForExitAsync(TimeSpan.FromSeconds(30));
    }

    /// <summary>
    /// Starts a new provider on the same repository and socket (the running one, if any, is killed with its children
    /// first). The dead provider's socket files are removed, so the wait sees the new one's.
    /// </summary>
    public async Task RestartAsync()
    {
        await Process.DisposeAsync();
        File.Delete(Endpoint.SidebandPath);
        File.Delete(Endpoint.SocketPath);
        Process = Launch(_directory, Endpoint, _extraArguments);
        await WaitUntilListeningAsync();
    }

    private static ChildProcess Launch(TempDirectory directory, ProviderEndpoint endpoint, IReadOnlyList<string> extraArguments) => ChildProcess.Start("dotnet",
        [RepoPaths.DirectoryProviderDll, "--listen", endpoint.ToString(), "--repository", directory.File("repo"), .. extraArguments]);

    private async Task WaitUntilListeningAsync()
    {
        await Process.WaitForFileAsync(Endpoint.SidebandPath, TimeSpan.FromSeconds(30));
        await Process.WaitForFileAsync(Endpoint.SocketPath, TimeSpan.FromSeconds(30));
    }

    public async ValueTask DisposeAsync()
    {
        await Process.DisposeAsync();
        _directory.Dispose();
    }
}
