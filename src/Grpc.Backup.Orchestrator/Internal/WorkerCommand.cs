using Grpc.Backup.Orchestrator.Inventory;
using Grpc.Backup.Protocol.V1;

namespace Grpc.Backup.Orchestrator.Internal;

/// <summary>
/// Checks the provider's worker command (an untrusted reply) before the host runs it as the container's root: an
/// absolute path to a regular file that others may execute, that only its owner can change, owned by root or by the
/// provider's uid, and that does not live in the container's own tree (which the container could replace).
/// </summary>
internal static class WorkerCommand
{
    private const int MaxArguments = 64;
    private const int MaxArgumentBytes = 4096;

    public static IReadOnlyList<string> Check(ContainerWorker? worker, ContainerGuest guest)
    {
        if (worker is null || worker.Argv.Count == 0)
        {
            throw new BackupException("the provider chose mechanism DIRECTORY but declared no worker command");
        }
        if (worker.Argv.Count > MaxArguments || worker.Argv.Any(a => a.Length > MaxArgumentBytes || a.Contains('\0', StringComparison.Ordinal)))
        {
            throw new BackupException($"the provider's worker command has more than {MaxArguments} arguments, an over-long one, or a NUL byte");
        }
        string path = worker.Argv[0];
        if (!Path.IsPathFullyQualified(path) || Path.GetFullPath(path) != path)
        {
            throw new BackupException($"the provider's worker '{path}' is not a normalized absolute path");
        }
        var info = new FileInfo(path);
        if (!info.Exists || info.LinkTarget is not null && !File.Exists(info.ResolveLinkTarget(returnFinalTarget: true)?.FullName))
        {
            throw new BackupException($"the provider's worker '{path}' does not exist or is not a regular file");
        }
        UnixFileMode mode = File.GetUnixFileMode(path);
        if (!mode.HasFlag(UnixFileMode.OtherExecute))
        {
            throw new BackupException($"the provider's worker '{path}' is not executable by others (the container's root runs it)");
        }
        if ((mode & (UnixFileMode.GroupWrite | UnixFileMode.OtherWrite)) != 0)
        {
            throw new BackupException($"the provider's worker '{path}' is writable by group or others");
        }
        string resolved = info.ResolveLinkTarget(returnFinalTarget: true)?.FullName ?? path;
        foreach (string tree in new[] { guest.RootFileSystem }.Concat(guest.MountPoints.Select(m => m.HostPath)))
        {
            string root = Path.TrimEndingDirectorySeparator(Path.GetFullPath(tree)) + "/";
            if (resolved.StartsWith(root, StringComparison.Ordinal) || path.StartsWith(root, StringComparison.Ordinal))
            {
                throw new BackupException($"the provider's worker '{path}' lies inside the container's tree '{tree}'");
            }
        }
        return worker.Argv.ToList();
    }
}
