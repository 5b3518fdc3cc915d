using Grpc.Backup.Protocol;

namespace Grpc.Backup.Tests.Infrastructure;

/// <summary>The directory provider running as a real process on a socket in a private temp directory.</summary>
internal sealed class DirectoryProviderProcess : IAsyncDisposable
{
    private readonly TempDirectory _directory;

    private DirectoryProviderProcess(TempDirectory directory, ChildProcess process, ProviderEndpoint endpoint)
    {
        _directory = directory;
        Process = process;
        Endpoint = endpoint;
    }

    public ChildProcess Process { get; }

    public ProviderEndpoint Endpoint { get; }

    public string RepositoryPath => _directory.File("repo");

    public static async Task<DirectoryProviderProcess> StartAsync(UnixFileMode directoryMode = UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute,
        params string[] extraArguments)
    {
        var directory = new TempDirectory(directoryMode);
        Directory.CreateDirectory(directory.File("repo"));
        var endpoint = ProviderEndpoint.Parse("unix:" + directory.File("provider.sock"));
        ChildProcess process = ChildProcess.Start("dotnet",
            [RepoPaths.DirectoryProviderDll, "--listen", endpoint.ToString(), "--repository", directory.File("repo"), .. extraArguments]);
        var provider = new DirectoryProviderProcess(directory, process, endpoint);
        try
        {
            await process.WaitForFileAsync(endpoint.SidebandPath, TimeSpan.FromSeconds(30));
            await process.WaitForFileAsync(endpoint.SocketPath, TimeSpan.FromSeconds(30));
            return provider;
        }
        catch
        {
            await provider.DisposeAsync();
            throw;
        }
    }

    public async ValueTask DisposeAsync()
    {
        await Process.DisposeAsync();
        _directory.Dispose();
    }
}
