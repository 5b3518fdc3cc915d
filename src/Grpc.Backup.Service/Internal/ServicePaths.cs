namespace Grpc.Backup.Service.Internal;

/// <summary>
/// Where the service keeps its state: <c>STATE/catalog.db</c> (catalog and journal), <c>STATE/logs/</c> (per-guest task
/// logs, as vzdump's), and a private runtime directory for the snapshot NBD sockets. All created root-only (0700).
/// </summary>
internal sealed record ServicePaths(string ConfigDirectory, string StateDirectory, string RuntimeDirectory, string SocketPath)
{
    public string CatalogPath => Path.Combine(StateDirectory, "catalog.db");

    public string LogDirectory => Path.Combine(StateDirectory, "logs");

    public void CreateDirectories()
    {
        foreach (string directory in new[] { StateDirectory, LogDirectory, RuntimeDirectory, Path.GetDirectoryName(SocketPath)! })
        {
            Directory.CreateDirectory(directory, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        }
        File.SetUnixFileMode(RuntimeDirectory, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
    }
}
