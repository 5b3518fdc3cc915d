namespace Grpc.Backup.Containers.Internal;

/// <summary>
/// A cgroup v2 group of its own for one container worker, under the host process's own cgroup: everything the worker
/// starts stays in it (a worker cannot move itself out: the parent's cgroup.procs is not writable from its user
/// namespace), and <see cref="Dispose"/> kills whatever is left (cgroup.kill) and removes it. Null from
/// <see cref="TryCreate"/> when no cgroup v2 hierarchy is mounted or it is not writable here.
/// </summary>
internal sealed class WorkerCgroup : IDisposable
{
    private WorkerCgroup(string path) => Path = path;

    /// <summary>The cgroup's directory.</summary>
    public string Path { get; }

    /// <summary>The file a process writes "0" to in order to move itself into the group.</summary>
    public string ProcsFile => System.IO.Path.Join(Path, "cgroup.procs");

    public static WorkerCgroup? TryCreate()
    {
        try
        {
            string? mount = File.ReadLines("/proc/self/mountinfo")
                .Select(line => line.Split(" - ", 2))
                .Where(parts => parts.Length == 2 && parts[1].StartsWith("cgroup2 ", StringComparison.Ordinal))
                .Select(parts => parts[0].Split(' ')[4])
                .FirstOrDefault();
            string? own = File.ReadLines("/proc/self/cgroup").FirstOrDefault(line => line.StartsWith("0::", StringComparison.Ordinal))?[3..];
            if (mount is null || own is null)
            {
                return null;
            }
            string path = System.IO.Path.Join(mount, own, "grpc-backup-worker-" + Convert.ToHexStringLower(System.Security.Cryptography.RandomNumberGenerator.GetBytes(8)));
            Directory.CreateDirectory(path);
            return File.Exists(System.IO.Path.Join(path, "cgroup.procs")) ? new WorkerCgroup(path) : null;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return null;
        }
    }

    public void Dispose()
    {
        try
        {
            if (File.Exists(System.IO.Path.Join(Path, "cgroup.kill")))
            {
                File.WriteAllText(System.IO.Path.Join(Path, "cgroup.kill"), "1");
            }
            // The kernel refuses rmdir while a killed process is still being torn down: a few tries, then leave it.
            for (int attempt = 0; attempt < 100; attempt++)
            {
                try
                {
                    Directory.Delete(Path);
                    return;
                }
                catch (IOException) when (attempt < 99)
                {
                    Thread.Sleep(10);
                }
            }
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
        }
    }
}
