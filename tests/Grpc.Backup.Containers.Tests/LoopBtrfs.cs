namespace Grpc.Backup.Containers.Tests;

/// <summary>A real btrfs: a 300 MB image file, mkfs.btrfs, mounted through a loop device; unmounted and detached on dispose.</summary>
internal sealed class LoopBtrfs : IDisposable
{
    public LoopBtrfs(TestDirectory directory)
    {
        RequiredTools.Ensure();
        Image = directory.Combine("btrfs.img");
        MountPoint = directory.CreateDirectory("btrfs");
        Host.Run("truncate", "-s", "300M", Image);
        Host.Run("mkfs.btrfs", "-q", Image);
        Host.Run("mount", "-o", "loop", Image, MountPoint);
        Host.Chmod(MountPoint, "0755");
    }

    public string Image { get; }

    public string MountPoint { get; }

    public string CreateSubvolume(string name)
    {
        string path = Path.Combine(MountPoint, name);
        Host.Run("btrfs", "subvolume", "create", path);
        Host.Chmod(path, "0755");
        return path;
    }

    /// <summary>Every subvolume's path, snapshots included.</summary>
    public IReadOnlyList<string> Subvolumes() =>
        Host.Run("btrfs", "subvolume", "list", MountPoint).Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => l.Split(' ')[^1]).Order().ToList();

    public void Dispose()
    {
        (int exitCode, _, _) = Host.TryRun("umount", MountPoint);
        if (exitCode != 0)
        {
            Host.TryRun("umount", "--lazy", MountPoint);
        }
        // mount -o loop sets autoclear: the device detaches once the file system is released, which can take a moment
        // (longer if a namespace copied the mount). Detach explicitly whatever is still attached, then wait for it.
        foreach (string line in Host.Run("losetup", "--associated", Image).Split('\n', StringSplitOptions.RemoveEmptyEntries))
        {
            Host.TryRun("losetup", "--detach", line.Split(':')[0]);
        }
        for (int attempt = 0; attempt < 100 && Host.Run("losetup", "--associated", Image).Trim().Length > 0; attempt++)
        {
            Thread.Sleep(100);
        }
        Assert.Empty(Host.Run("losetup", "--associated", Image).Trim());
    }
}
