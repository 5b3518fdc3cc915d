namespace Grpc.Backup.Containers.Internal;

/// <summary>
/// Checks mount point paths from the container's configuration. They end up in mount targets, rsync filter rules and
/// tar member names, so anything that one of those would read differently (wildcards, <c>..</c>, control
/// characters) is refused rather than escaped.
/// </summary>
internal static class ContainerPaths
{
    private static readonly char[] Forbidden = ['*', '?', '[', ']', '\\'];

    /// <summary>"/mnt/data" → "mnt/data".</summary>
    public static string ToRelative(string containerPath)
    {
        ArgumentNullException.ThrowIfNull(containerPath);
        if (!containerPath.StartsWith('/'))
        {
            throw new ContainerBackupException($"mount point '{containerPath}' is not an absolute container path");
        }
        if (containerPath.Any(char.IsControl) || containerPath.IndexOfAny(Forbidden) >= 0)
        {
            throw new ContainerBackupException($"mount point '{containerPath}' contains a control or wildcard character");
        }
        string[] parts = containerPath.Split('/', StringSplitOptions.RemoveEmptyEntries);
        if (parts.Length == 0)
        {
            throw new ContainerBackupException("'/' is the root file system, not a mount point");
        }
        if (parts.Any(p => p is "." or ".."))
        {
            throw new ContainerBackupException($"mount point '{containerPath}' contains '.' or '..'");
        }
        return string.Join('/', parts);
    }
}
