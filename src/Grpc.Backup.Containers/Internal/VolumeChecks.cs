namespace Grpc.Backup.Containers.Internal;

/// <summary>
/// Checks a mount point's target inside a volume before anything is mounted on it: the kernel follows symlinks in a
/// mount target, so a container whose <c>mnt/data</c> is a symlink to <c>/</c> could otherwise make the host mount
/// over a directory of the host's choosing. In stop mode the container is stopped and in snapshot mode the snapshot is
/// read-only, so what is checked is what is mounted on.
/// </summary>
internal static class VolumeChecks
{
    public static void CheckMountTarget(string volumeRoot, string relativePath, bool isDirectory, string containerPath)
    {
        string current = volumeRoot;
        string[] parts = relativePath.Split('/');
        for (int i = 0; i < parts.Length; i++)
        {
            current = Path.Combine(current, parts[i]);
            var info = new FileInfo(current);
            if (info.LinkTarget is not null)
            {
                throw new ContainerBackupException($"mount point {containerPath}: '{current}' is a symlink; refusing to mount through it");
            }
            bool last = i == parts.Length - 1;
            bool wantDirectory = !last || isDirectory;
            bool exists = wantDirectory ? Directory.Exists(current) : File.Exists(current);
            if (!exists)
            {
                throw new ContainerBackupException(
                    $"mount point {containerPath}: '{current}' does not exist as a {(wantDirectory ? "directory" : "regular file")} to mount on");
            }
        }
    }
}
