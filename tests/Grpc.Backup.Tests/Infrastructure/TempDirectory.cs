namespace Grpc.Backup.Tests.Infrastructure;

/// <summary>
/// A private scratch directory under /tmp, removed on dispose. Paths stay short because a Unix socket path must fit
/// in 107 bytes.
/// </summary>
internal sealed class TempDirectory : IDisposable
{
    public TempDirectory(UnixFileMode mode = UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute)
    {
        Path = Directory.CreateTempSubdirectory("gbt-").FullName;
        System.IO.File.SetUnixFileMode(Path, mode);
    }

    public string Path { get; }

    public string File(string name) => System.IO.Path.Combine(Path, name);

    public void Dispose()
    {
        try
        {
            Directory.Delete(Path, recursive: true);
        }
        catch (DirectoryNotFoundException)
        {
        }
        catch (IOException) when (DetachMounts() > 0)
        {
            // A FUSE view whose daemon died under load can outlive its owner's own lazy unmount by a moment; the
            // scratch directory still goes (the test that left it has already passed or failed on its own terms).
            Directory.Delete(Path, recursive: true);
        }
    }

    /// <summary>Lazily unmounts whatever is still mounted under this directory; returns how many.</summary>
    private int DetachMounts()
    {
        string prefix = Path + "/";
        var mountpoints = System.IO.File.ReadAllLines("/proc/self/mounts")
            .Select(line => line.Split(' ')[1])
            .Where(mountpoint => mountpoint.StartsWith(prefix, StringComparison.Ordinal))
            .OrderByDescending(mountpoint => mountpoint.Length)
            .ToList();
        foreach (string mountpoint in mountpoints)
        {
            using var umount = System.Diagnostics.Process.Start("umount", ["-l", mountpoint]);
            umount.WaitForExit();
        }
        return mountpoints.Count;
    }
}
