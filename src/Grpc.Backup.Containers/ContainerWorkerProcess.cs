using System.ComponentModel;
using System.Runtime.InteropServices;
using System.Text;
using Grpc.Backup.Containers.Internal;
using Grpc.Backup.Containers.Internal.Interop;
using Microsoft.Win32.SafeHandles;

namespace Grpc.Backup.Containers;

/// <summary>
/// A provider's container-backup worker (mechanism DIRECTORY) running inside a <see cref="ContainerBackupView"/>'s
/// namespaces as the container's root, with a connection to the provider's fd sideband as fd 3.
/// </summary>
/// <remarks>
/// <para>The worker is started with posix_spawn through nsenter: <see cref="System.Diagnostics.Process"/> can pass
/// only stdin, stdout and stderr, and clearing close-on-exec on a host fd for the duration of a Process.Start would
/// leak it into any child another thread starts meanwhile. posix_spawn's file actions place the connection at fd 3 in
/// this child only.</para>
/// <para>The sandbox: besides the container's user and mount namespaces, the worker gets new PID, network and IPC
/// namespaces (<c>unshare --pid --fork --kill-child --net --ipc --mount-proc</c>: it sees only its own processes,
/// has only a down loopback interface, and cannot signal or trace a host or container process), no_new_privs
/// (<c>setpriv --no-new-privs</c>: no setuid binary in the view raises it), and its own cgroup v2 group when the
/// hierarchy is writable (<see cref="Internal.WorkerCgroup"/>; a tiny host-written <c>sh</c> moves itself in before it
/// execs the rest, so nothing the worker starts escapes it). Its only channels are fd 3 and its stdout/stderr.</para>
/// <para>The environment is exactly what the caller gives plus PATH and LC_ALL: nothing of the host's environment
/// (which may hold secrets) reaches code that runs as the container's root. stdin is /dev/null; stdout and stderr
/// come back to the host line by line, kept apart: stderr lines are problems. SIGPIPE is reset to its default, which .NET ignores.</para>
/// </remarks>
public sealed class ContainerWorkerProcess : IAsyncDisposable
{
    private const string SafePath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
    private const int MaxOutputLine = 4096;

    private readonly Task _output;
    private readonly WorkerCgroup? _cgroup;
    private int _exited;

    private ContainerWorkerProcess(int processId, WorkerCgroup? cgroup, SafeFileHandle output, Action<string> onOutputLine, SafeFileHandle errors,
        Action<string> onErrorLine)
    {
        ProcessId = processId;
        _cgroup = cgroup;
        _output = Task.WhenAll(Task.Run(() => ReadLinesAsync(output, onOutputLine)), Task.Run(() => ReadLinesAsync(errors, onErrorLine)));
        Completion = Task.Factory.StartNew(WaitForExit, CancellationToken.None, TaskCreationOptions.LongRunning, TaskScheduler.Default);
    }

    /// <summary>The worker's pid in the host's pid namespace.</summary>
    public int ProcessId { get; }

    /// <summary>The worker's own cgroup directory, or null when cgroup v2 is not writable on this host.</summary>
    public string? CgroupPath => _cgroup?.Path;

    /// <summary>The exit status once the worker has ended and its output is read: the exit code, or 128 + the signal.</summary>
    public Task<int> Completion { get; }

    /// <summary>Starts <paramref name="argv"/> in the view's namespaces.</summary>
    /// <param name="view">Whose user and mount namespaces the worker joins.</param>
    /// <param name="argv">The worker's absolute path and arguments, as the provider declared them.</param>
    /// <param name="environment">Variables the worker gets (protos/README.md "Container worker").</param>
    /// <param name="sideband">A connected socket to the provider's sideband, which becomes the worker's fd 3.</param>
    /// <param name="onOutputLine">Receives each line the worker writes to stdout (progress, information).</param>
    /// <param name="onErrorLine">Receives each line the worker writes to stderr (problems, e.g. files it could not read).</param>
    /// <exception cref="ContainerBackupException">The command is unusable or could not be started.</exception>
    public static ContainerWorkerProcess Start(ContainerBackupView view, IReadOnlyList<string> argv, IReadOnlyDictionary<string, string> environment,
        SafeHandle sideband, Action<string> onOutputLine, Action<string> onErrorLine)
    {
        ArgumentNullException.ThrowIfNull(view);
        ArgumentNullException.ThrowIfNull(argv);
        ArgumentNullException.ThrowIfNull(environment);
        ArgumentNullException.ThrowIfNull(sideband);
        ArgumentNullException.ThrowIfNull(onOutputLine);
        ArgumentNullException.ThrowIfNull(onErrorLine);
        if (argv.Count == 0 || argv.Any(a => a.Contains('\0', StringComparison.Ordinal)))
        {
            throw new ContainerBackupException("the worker command is empty or contains a NUL byte");
        }
        var variables = new List<string> { "PATH=" + SafePath, "LC_ALL=C" };
        foreach (var (name, value) in environment)
        {
            if (name.Length == 0 || name.Contains('=', StringComparison.Ordinal) || (name + value).Contains('\0', StringComparison.Ordinal))
            {
                throw new ContainerBackupException($"invalid worker environment variable '{name}'");
            }
            variables.Add(name + "=" + value);
        }
        List<string> sandboxed =
        [
            "--pid", "--fork", "--kill-child", "--net", "--ipc", "--mount-proc", "--",
            "setpriv", "--no-new-privs", "--", .. argv,
        ];
        List<string> arguments = ["nsenter", .. view.Namespace.NsenterArguments(asHostRoot: false, "unshare", sandboxed)];
        WorkerCgroup? cgroup = WorkerCgroup.TryCreate();
        if (cgroup is not null)
        {
            // The script is the host's, fixed; the worker's argv only ever arrives as "$@".
            arguments = ["sh", "-c", "echo 0 > \"$1\" && shift && exec \"$@\"", "sh", cgroup.ProcsFile, .. arguments];
        }
        (SafeFileHandle outputRead, SafeFileHandle outputWrite) = OsPipe.Create();
        (SafeFileHandle errorRead, SafeFileHandle errorWrite) = OsPipe.Create();
        try
        {
            using (outputWrite)
            using (errorWrite)
            {
                int pid = Spawn(arguments, variables, sideband, outputWrite, errorWrite);
                return new ContainerWorkerProcess(pid, cgroup, outputRead, onOutputLine, errorRead, onErrorLine);
            }
        }
        catch
        {
            outputRead.Dispose();
            errorRead.Dispose();
            cgroup?.Dispose();
            throw;
        }
    }

    /// <summary>Kills the worker (if it still runs). Its namespaces and view stay; the caller closes the view.</summary>
    public void Kill()
    {
        // Only while not reaped: after waitpid the pid may belong to someone else.
        if (Volatile.Read(ref _exited) == 0)
        {
            _ = Libc.kill(ProcessId, Libc.SigKill);
        }
    }

    /// <summary>Kills the worker if it still runs and waits until it is reaped and its output read.</summary>
    public async ValueTask DisposeAsync()
    {
        Kill();
        await Completion.ConfigureAwait(false);
    }

    private int WaitForExit()
    {
        int status = WaitPid();
        Volatile.Write(ref _exited, 1);
        // Whatever the worker left in its cgroup goes now, or it could hold the output pipe open forever.
        _cgroup?.Dispose();
        // The output pipe ends when the worker and anything it started have closed it.
        _output.GetAwaiter().GetResult();
        int signal = status & 0x7f;
        return signal == 0 ? (status >> 8) & 0xff : 128 + signal;
    }

    private unsafe int WaitPid()
    {
        int status;
        while (Libc.waitpid(ProcessId, &status, 0) < 0)
        {
            int errno = Marshal.GetLastPInvokeError();
            if (errno != Libc.Eintr)
            {
                throw new Win32Exception(errno, $"waitpid({ProcessId}) failed");
            }
        }
        return status;
    }

    private static async Task ReadLinesAsync(SafeFileHandle output, Action<string> onOutputLine)
    {
        using var stream = new FileStream(output, FileAccess.Read, bufferSize: 0);
        using var reader = new StreamReader(stream, new UTF8Encoding(false, throwOnInvalidBytes: false));
        string? line;
        while ((line = await reader.ReadLineAsync()) is not null)
        {
            // A worker is the provider's code fed by container data: keep a runaway line from filling the log.
            onOutputLine(line.Length > MaxOutputLine ? line[..MaxOutputLine] + "…" : line);
        }
    }

    private static unsafe int Spawn(List<string> arguments, List<string> variables, SafeHandle sideband, SafeFileHandle output, SafeFileHandle errors)
    {
        void* actions = NativeMemory.AllocZeroed(Libc.SpawnStructureBytes);
        void* attributes = NativeMemory.AllocZeroed(Libc.SpawnStructureBytes);
        void* signals = NativeMemory.AllocZeroed(Libc.SpawnStructureBytes);
        byte** argv = ToNative(arguments);
        byte** envp = ToNative(variables);
        bool addedSideband = false, addedOutput = false, addedErrors = false;
        int sidebandCopy = -1;
        try
        {
            sideband.DangerousAddRef(ref addedSideband);
            output.DangerousAddRef(ref addedOutput);
            errors.DangerousAddRef(ref addedErrors);
            // A copy at a number above 3, so the dup2 to 3 below always clears close-on-exec (dup2 onto itself does not).
            sidebandCopy = Libc.fcntl((int)sideband.DangerousGetHandle(), Libc.FDupfdCloexec, 10);
            if (sidebandCopy < 0)
            {
                throw new ContainerBackupException($"cannot duplicate the sideband socket (errno {Marshal.GetLastPInvokeError()})");
            }
            int outputFd = (int)output.DangerousGetHandle();
            Check(Libc.posix_spawn_file_actions_init(actions), "posix_spawn_file_actions_init");
            Check(Libc.posix_spawn_file_actions_addopen(actions, 0, "/dev/null", Libc.ORdonly, 0), "addopen");
            Check(Libc.posix_spawn_file_actions_adddup2(actions, outputFd, 1), "adddup2");
            Check(Libc.posix_spawn_file_actions_adddup2(actions, (int)errors.DangerousGetHandle(), 2), "adddup2");
            Check(Libc.posix_spawn_file_actions_adddup2(actions, sidebandCopy, 3), "adddup2");
            Check(Libc.posix_spawnattr_init(attributes), "posix_spawnattr_init");
            Check(Libc.posix_spawnattr_setflags(attributes, Libc.PosixSpawnSetSigDefault | Libc.PosixSpawnSetSigMask), "setflags");
            Check(Libc.sigemptyset(signals), "sigemptyset");
            Check(Libc.posix_spawnattr_setsigmask(attributes, signals), "setsigmask");
            Check(Libc.sigaddset(signals, Libc.SigPipe), "sigaddset");
            Check(Libc.posix_spawnattr_setsigdefault(attributes, signals), "setsigdefault");
            int pid;
            int error = Libc.posix_spawnp(&pid, arguments[0], actions, attributes, argv, envp);
            if (error != 0)
            {
                throw new ContainerBackupException($"cannot start the worker through {arguments[0]}: {new Win32Exception(error).Message}");
            }
            return pid;
        }
        finally
        {
            if (sidebandCopy >= 0)
            {
                _ = Libc.close(sidebandCopy);
            }
            if (addedSideband)
            {
                sideband.DangerousRelease();
            }
            if (addedOutput)
            {
                output.DangerousRelease();
            }
            if (addedErrors)
            {
                errors.DangerousRelease();
            }
            _ = Libc.posix_spawn_file_actions_destroy(actions);
            _ = Libc.posix_spawnattr_destroy(attributes);
            NativeMemory.Free(actions);
            NativeMemory.Free(attributes);
            NativeMemory.Free(signals);
            FreeNative(argv, arguments.Count);
            FreeNative(envp, variables.Count);
        }
    }

    private static void Check(int result, string what)
    {
        if (result != 0)
        {
            throw new ContainerBackupException($"{what} failed: {new Win32Exception(result).Message}");
        }
    }

    private static unsafe byte** ToNative(List<string> strings)
    {
        var array = (byte**)NativeMemory.AllocZeroed((nuint)(strings.Count + 1), (nuint)sizeof(byte*));
        for (int i = 0; i < strings.Count; i++)
        {
            array[i] = (byte*)Marshal.StringToCoTaskMemUTF8(strings[i]);
        }
        return array;
    }

    private static unsafe void FreeNative(byte** array, int count)
    {
        for (int i = 0; i < count; i++)
        {
            Marshal.FreeCoTaskMem((nint)array[i]);
        }
        NativeMemory.Free(array);
    }
}
