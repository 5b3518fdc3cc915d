using System.Globalization;

namespace Grpc.Backup.Containers.Internal;

/// <summary>The few btrfs operations snapshot mode needs, through btrfs-progs and coreutils' stat, as host root.</summary>
internal static class Btrfs
{
    // Every btrfs subvolume's top directory has this inode number (BTRFS_FIRST_FREE_OBJECTID).
    private const string SubvolumeRootInode = "256";

    /// <summary>Fails clearly unless <paramref name="path"/> is the top directory of a btrfs subvolume.</summary>
    public static async Task EnsureSubvolumeAsync(string path, string what, CancellationToken cancellationToken)
    {
        ProcessResult type = await ProcessRunner.RunAsync("stat", ["--file-system", "--format=%T", "--", path], cancellationToken);
        if (type.ExitCode != 0)
        {
            throw new ContainerBackupException($"snapshot mode: cannot inspect {what} '{path}': {type.Describe()}");
        }
        string fileSystem = type.StandardOutput.Trim();
        if (fileSystem != "btrfs")
        {
            throw new ContainerBackupException(
                $"snapshot mode needs {what} '{path}' to be a btrfs subvolume, but it is on {fileSystem}; use stop or suspend mode");
        }
        ProcessResult inode = await ProcessRunner.RunAsync("stat", ["--format=%i", "--", path], cancellationToken);
        if (inode.ExitCode != 0 || inode.StandardOutput.Trim() != SubvolumeRootInode)
        {
            throw new ContainerBackupException(
                $"snapshot mode needs {what} '{path}' to be a btrfs subvolume, but it is a plain directory on btrfs (inode {inode.StandardOutput.Trim()})");
        }
    }

    /// <summary>Takes a read-only snapshot of <paramref name="source"/> beside it and returns its path.</summary>
    public static async Task<string> SnapshotAsync(string source, CancellationToken cancellationToken)
    {
        // Beside the subvolume: a snapshot must be on the same btrfs file system, and this keeps it out of the container.
        string parent = Path.GetDirectoryName(source) ?? throw new ContainerBackupException($"'{source}' has no parent directory");
        string name = $".{Path.GetFileName(source)}.backup-{Random.Shared.NextInt64().ToString("x", CultureInfo.InvariantCulture)}";
        string snapshot = Path.Combine(parent, name);
        ProcessResult result = await ProcessRunner.RunAsync("btrfs", ["subvolume", "snapshot", "-r", "--", source, snapshot], cancellationToken);
        if (result.ExitCode != 0)
        {
            throw new ContainerBackupException($"snapshot of '{source}' failed: {result.Describe()}");
        }
        return snapshot;
    }

    public static async Task DeleteAsync(string snapshot)
    {
        ProcessResult result = await ProcessRunner.RunAsync("btrfs", ["subvolume", "delete", "--", snapshot], CancellationToken.None);
        if (result.ExitCode != 0)
        {
            throw new IOException(result.Describe());
        }
    }
}
