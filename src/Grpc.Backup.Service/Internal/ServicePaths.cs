namespace Grpc.Backup.Service.Internal;

/// <summary>
/// Where the service keeps its state: <c>STATE/catalog.db</c> (catalog and journal), <c>STATE/logs/</c> (per-guest task
/// logs, as vzdump's), <c>STATE/manifests/</c> (containers' file manifests, for verification), a private runtime directory for the snapshot NBD sockets, and the per-guest locks (shared with the CLI's direct mode). All created root-only (0700).
/// </summary>
internal sealed record ServicePaths(string ConfigDirectory, string StateDirectory, string RuntimeDirectory, string SocketPath,
    string LockDirectory = Orchestrator.GuestLock.DefaultDirectory)
{
    public string CatalogPath => Path.Combine(StateDirectory, "catalog.db");

    public string LogDirectory => Path.Combine(StateDirectory, "logs");

    public string ManifestDirectory => Path.Combine(StateDirectory, "manifests");

    /// <summary>Where a container backup's file manifest is kept: one file per storage and archive ('/' in a name becomes '@').</summary>
    public string ManifestPath(string storage, string archive) => Path.Combine(ManifestDirectory, $"{storage}@{archive.Replace('/', '@')}.json");

    public void CreateDirectories()
    {
        foreach (string directory in new[] { StateDirectory, LogDirectory, ManifestDirectory, RuntimeDirectory, Path.GetDirectoryName(SocketPath)! })
        {
            Directory.CreateDirectory(directory, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        }
        File.SetUnixFileMode(RuntimeDirectory, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
    }
}
