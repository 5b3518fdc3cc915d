namespace Grpc.Backup.Containers.Tests;

/// <summary>
/// A scratch directory under /tmp, mode 0755 so that a container's root (host uid 100000) can traverse it, deleted on
/// dispose (as root, whatever the tree's owners and modes).
/// </summary>
internal sealed class TestDirectory : IDisposable
{
    public TestDirectory()
    {
        DirectoryInfo directory = Directory.CreateTempSubdirectory("ct-tests-");
        File.SetUnixFileMode(directory.FullName, (UnixFileMode)0b111_101_101);
        Path = directory.FullName;
    }

    public string Path { get; }

    public string Combine(params string[] parts) => System.IO.Path.Combine([Path, .. parts]);

    /// <summary>
    /// A path for a restored rootfs (not created) under a fresh parent owned by root with mode 0700, as a restore
    /// requires: host users must not reach the restored setuid files.
    /// </summary>
    public string RestoreTarget(string name)
    {
        string parent = Combine("private-" + name);
        Directory.CreateDirectory(parent);
        File.SetUnixFileMode(parent, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        return System.IO.Path.Combine(parent, name);
    }

    /// <summary>Creates (0755) and returns a subdirectory.</summary>
    public string CreateDirectory(string name)
    {
        string path = Combine(name);
        Directory.CreateDirectory(path);
        File.SetUnixFileMode(path, (UnixFileMode)0b111_101_101);
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
            // Already gone.
        }
    }
}
