using Grpc.Backup.Orchestrator.Inventory;
using Grpc.Backup.Protocol.V1;

namespace Grpc.Backup.Orchestrator.Internal;

/// <summary>
/// Checks the provider's worker command (an untrusted reply) before the host runs it as the container's root: an
/// absolute path to a regular file that others may execute, that only its owner can change, owned by root or by the
/// provider's uid (read from the file itself, not only its mode bits), that is not a shell or another interpreter
/// (which would turn the arguments into a program the host never checked), and that does not live in the
/// container's own tree (which the container could replace). The rules are protos/README.md "Container worker".
/// </summary>
internal static class WorkerCommand
{
    private const int MaxArguments = 64;
    private const int MaxArgumentBytes = 4096;

    /// <summary>Programs that run code given as an argument (<c>sh -c</c>, <c>env</c>, <c>python3 -c</c>): never a worker.</summary>
    private static readonly HashSet<string> s_interpreters = new(StringComparer.Ordinal)
    {
        "sh", "bash", "dash", "ash", "ksh", "mksh", "zsh", "csh", "tcsh", "fish", "busybox", "env", "nsenter", "unshare", "setpriv",
        "perl", "python", "python3", "ruby", "node", "lua", "tclsh", "awk", "gawk", "mawk", "php", "xargs", "find", "sudo", "su",
    };

    public static IReadOnlyList<string> Check(ContainerWorker? worker, ContainerGuest guest, uint providerUid)
    {
        if (worker is null || worker.Argv.Count == 0)
        {
            throw new BackupException("the provider chose mechanism DIRECTORY but declared no worker command");
        }
        if (worker.Argv.Count > MaxArguments || worker.Argv.Any(a => a.Length > MaxArgumentBytes || a.Contains('\0', StringComparison.Ordinal)))
        {
            throw new BackupException($"the provider's worker command has more than {MaxArguments} arguments, an over-long one, or a NUL byte");
        }
        string program = CheckFile(worker.Argv[0], guest, providerUid, "worker");
        if (program == "dotnet")
        {
            // A runtime host runs the assembly it is given: that file is the program, and it gets the same checks.
            if (worker.Argv.Count < 2)
            {
                throw new BackupException("the provider's worker runs dotnet without an assembly");
            }
            CheckFile(worker.Argv[1], guest, providerUid, "worker assembly");
        }
        return worker.Argv.ToList();
    }

    /// <summary>The file checks of argv[0] (and a runtime host's assembly); returns the program's file name.</summary>
    private static string CheckFile(string path, ContainerGuest guest, uint providerUid, string what)
    {
        if (!Path.IsPathFullyQualified(path) || Path.GetFullPath(path) != path)
        {
            throw new BackupException($"the provider's {what} '{path}' is not a normalized absolute path");
        }
        var info = new FileInfo(path);
        if (!info.Exists || info.LinkTarget is not null && !File.Exists(info.ResolveLinkTarget(returnFinalTarget: true)?.FullName))
        {
            throw new BackupException($"the provider's {what} '{path}' does not exist or is not a regular file");
        }
        string resolved = info.ResolveLinkTarget(returnFinalTarget: true)?.FullName ?? path;
        string program = Path.GetFileName(resolved);
        if (s_interpreters.Contains(program) || s_interpreters.Contains(Path.GetFileName(path))
            || program.StartsWith("python", StringComparison.Ordinal) || program.StartsWith("perl", StringComparison.Ordinal))
        {
            throw new BackupException($"the provider's {what} '{path}' is a shell or interpreter ({program}); the worker must be a program, not a command line");
        }
        uint owner;
        using (Microsoft.Win32.SafeHandles.SafeFileHandle handle = File.OpenHandle(resolved, FileMode.Open, FileAccess.Read))
        {
            owner = Transport.PassedFileInfo.Get(handle).OwnerUid;
        }
        if (owner != 0 && owner != providerUid)
        {
            throw new BackupException($"the provider's {what} '{path}' belongs to uid {owner}; it must belong to root or to the provider (uid {providerUid})");
        }
        UnixFileMode mode = File.GetUnixFileMode(resolved);
        if (what == "worker" && !mode.HasFlag(UnixFileMode.OtherExecute))
        {
            throw new BackupException($"the provider's {what} '{path}' is not executable by others (the container's root runs it)");
        }
        if ((mode & (UnixFileMode.GroupWrite | UnixFileMode.OtherWrite)) != 0)
        {
            throw new BackupException($"the provider's {what} '{path}' is writable by group or others");
        }
        foreach (string tree in new[] { guest.RootFileSystem }.Concat(guest.MountPoints.Select(m => m.HostPath)))
        {
            string root = Path.TrimEndingDirectorySeparator(Path.GetFullPath(tree)) + "/";
            if (resolved.StartsWith(root, StringComparison.Ordinal) || path.StartsWith(root, StringComparison.Ordinal))
            {
                throw new BackupException($"the provider's {what} '{path}' lies inside the container's tree '{tree}'");
            }
        }
        return program;
    }
}
