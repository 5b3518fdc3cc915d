namespace Grpc.Backup.Transport.Tests.Support;

/// <summary>A uniquely named directory under /tmp, removed with everything in it.</summary>
internal sealed class TempDirectory : IDisposable
{
    public TempDirectory()
    {
        Path = Directory.CreateTempSubdirectory("gbfd-test-").FullName;

        // World-traversable, so that a client running as another uid can reach a socket in it.
        System.IO.File.SetUnixFileMode(Path, (UnixFileMode)Convert.ToInt32("755", 8));
    }

    public string Path { get; }

    public string File(string name) => System.IO.Path.Combine(Path, name);

    /// <summary>A new file with this content; its unique path is what fd leak checks look for.</summary>
    public string CreateFile(string name, string content)
    {
        string path = File(name);
        System.IO.File.WriteAllText(path, content);
        return path;
    }

    public void Dispose()
    {
        try
        {
            Directory.Delete(Path, recursive: true);
        }
        catch (DirectoryNotFoundException)
        {
        }
    }
}
