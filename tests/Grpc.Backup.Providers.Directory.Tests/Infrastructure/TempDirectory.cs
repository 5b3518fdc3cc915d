namespace Grpc.Backup.Providers.Directory.Tests.Infrastructure;

/// <summary>
/// A private scratch directory under /tmp, removed on dispose. Paths stay short because a Unix socket path must fit
/// in 107 bytes.
/// </summary>
internal sealed class TempDirectory : IDisposable
{
    public TempDirectory(UnixFileMode mode = UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute)
    {
        Path = System.IO.Directory.CreateTempSubdirectory("gbdt-").FullName;
        System.IO.File.SetUnixFileMode(Path, mode);
    }

    public string Path { get; }

    public string File(string name) => System.IO.Path.Combine(Path, name);

    public void Dispose()
    {
        try
        {
            System.IO.Directory.Delete(Path, recursive: true);
        }
        catch (DirectoryNotFoundException)
        {
        }
    }
}
