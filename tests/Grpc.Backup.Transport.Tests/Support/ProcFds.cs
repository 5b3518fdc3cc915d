namespace Grpc.Backup.Transport.Tests.Support;

/// <summary>
/// What this process has open, from /proc/self/fd. Tests look for fds that point into their own
/// uniquely named temp directory, so tests running in parallel do not disturb each other.
/// </summary>
internal static class ProcFds
{
    public static List<string> PointingInto(string directory)
    {
        var targets = new List<string>();
        foreach (string entry in Directory.EnumerateFileSystemEntries("/proc/self/fd"))
        {
            try
            {
                string? target = new FileInfo(entry).LinkTarget;
                if (target is not null && target.StartsWith(directory + "/", StringComparison.Ordinal))
                {
                    targets.Add(target);
                }
            }
            catch (IOException)
            {
                // Closed while we looked.
            }
        }

        return targets;
    }

    /// <summary>Waits (briefly) until no fd points into the directory; returns those still open.</summary>
    public static async Task<List<string>> WaitUntilNoneInto(string directory)
    {
        List<string> open = PointingInto(directory);
        for (int i = 0; i < 100 && open.Count > 0; i++)
        {
            await Task.Delay(20);
            open = PointingInto(directory);
        }

        return open;
    }
}
