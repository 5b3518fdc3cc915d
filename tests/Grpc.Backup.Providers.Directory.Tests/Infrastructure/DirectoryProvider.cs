using Grpc.Backup.Host;
using Grpc.Backup.Protocol;

namespace Grpc.Backup.Providers.Directory.Tests.Infrastructure;

/// <summary>
/// The directory provider running as a real process on a socket in a private temp directory, with its repository
/// there too, and a host connection to it. Disposing kills the provider's whole process tree (its qemu-nbd children
/// included) and removes the directory.
/// </summary>
internal sealed class DirectoryProvider : IAsyncDisposable
{
    private readonly TempDirectory _directory;
    private readonly string[] _arguments;

    private DirectoryProvider(TempDirectory directory, string[] arguments, ChildProcess process, ProviderConnection connection)
    {
        _directory = directory;
        _arguments = arguments;
        Process = process;
        Connection = connection;
    }

    public ChildProcess Process { get; private set; }

    public ProviderConnection Connection { get; private set; }

    public string RepositoryPath => _directory.File("repo");

    /// <summary>A scratch directory beside the repository (source images, sockets).</summary>
    public string WorkPath => _directory.File("work");

    public string Work(string name) => Path.Combine(WorkPath, name);

    public static async Task<DirectoryProvider> StartAsync(params string[] extraArguments)
    {
        var directory = new TempDirectory();
        try
        {
            System.IO.Directory.CreateDirectory(directory.File("repo"));
            System.IO.Directory.CreateDirectory(directory.File("work"));
            (ChildProcess process, ProviderConnection connection) = await LaunchAsync(directory, extraArguments);
            return new DirectoryProvider(directory, extraArguments, process, connection);
        }
        catch
        {
            directory.Dispose();
            throw;
        }
    }

    /// <summary>Kills the provider (no graceful shutdown, as in a crash) and starts a new one on the same repository.</summary>
    public async Task RestartAsync()
    {
        await Connection.DisposeAsync();
        await Process.DisposeAsync();
        (Process, Connection) = await LaunchAsync(_directory, _arguments);
    }

    private static async Task<(ChildProcess, ProviderConnection)> LaunchAsync(TempDirectory directory, string[] extraArguments)
    {
        var endpoint = ProviderEndpoint.Parse("unix:" + directory.File("provider.sock"));
        File.Delete(endpoint.SocketPath);
        File.Delete(endpoint.SidebandPath);
        ChildProcess process = ChildProcess.Start("dotnet",
            [RepoPaths.DirectoryProviderDll, "--listen", endpoint.ToString(), "--repository", directory.File("repo"), .. extraArguments],
            // Prune's hourly/daily rules use the provider's local time; pin it so the tests mean the same everywhere.
            new Dictionary<string, string?> { ["TZ"] = "UTC" });
        try
        {
            await process.WaitForFileAsync(endpoint.SocketPath, TimeSpan.FromSeconds(60));
            ProviderConnection connection = await ProviderConnection.ConnectAsync(endpoint, new ProviderConnectionOptions
            {
                // Repository operations with rebases run longer than the default unary deadline on a busy machine.
                UnaryDeadline = TimeSpan.FromMinutes(2),
            });
            return (process, connection);
        }
        catch
        {
            await process.DisposeAsync();
            throw;
        }
    }

    /// <summary>The archive directories of the repository (guest/timestamp), complete or not.</summary>
    public IReadOnlyList<string> ArchiveDirectories() =>
        System.IO.Directory.EnumerateDirectories(RepositoryPath)
            .SelectMany(System.IO.Directory.EnumerateDirectories)
            .Select(d => Path.GetRelativePath(RepositoryPath, d))
            .Order(StringComparer.Ordinal)
            .ToList();

    public async ValueTask DisposeAsync()
    {
        await Connection.DisposeAsync();
        await Process.DisposeAsync();
        _directory.Dispose();
    }
}
