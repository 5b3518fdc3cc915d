using System.Diagnostics;
using System.Globalization;
using System.Text;
using Grpc.Backup.Containers.Internal;
using Grpc.Backup.Transport;

namespace Grpc.Backup.Containers;

/// <summary>
/// A container's user namespace (with its id map) plus a private copy of the host's mount namespace, kept alive by a
/// small holder process, so that commands can be run as the container's root (<see cref="UserNamespaceCommand"/>).
/// </summary>
/// <remarks>
/// <para>.NET cannot <c>unshare(CLONE_NEWUSER)</c> itself: the kernel refuses it in a multithreaded process. The holder
/// is util-linux, started before any runtime thread could exist in it:
/// <c>unshare --mount --propagation private -- unshare --user -- cat</c>. The outer unshare makes the private mount
/// namespace while still host root, so that namespace belongs to the initial user namespace: the host can bind-mount
/// views into it freely, and the container's root cannot change them. The inner unshare then creates the user
/// namespace; <c>cat</c> only blocks on its stdin, so the holder ends by itself when the host closes it or dies.</para>
/// <para>The host (root) writes <c>/proc/PID/uid_map</c> and <c>gid_map</c> itself instead of using
/// <c>unshare --map-users</c>: util-linux 2.38 accepts a single range there and delegates to newuidmap, which needs the
/// uidmap package and <c>/etc/subuid</c> entries for root. A privileged writer may write any map, with all its ranges,
/// in one write.</para>
/// <para>Commands join with <c>nsenter --user --mount --setuid 0 --setgid 0</c>: they are uid/gid 0 inside, with full
/// capabilities over the container's ids only, share the host's network, and see the private mounts. For a privileged
/// map there is no user namespace; commands run as host root in the private mount namespace (as Proxmox runs
/// <c>backup_container</c> for privileged containers).</para>
/// <para>Limit: the private mount namespace is a copy of the host's mount table when the holder starts, so while it
/// lives it keeps every file system that was mounted then in use: a host umount succeeds but the file system (and a
/// loop device under it) is only released when the holder ends, as with vzdump's own unshare.</para>
/// </remarks>
public sealed class UserNamespace : IAsyncDisposable
{
    private static readonly TimeSpan StartTimeout = TimeSpan.FromSeconds(10);

    private readonly Process _holder;
    private readonly Task<string> _holderErrors;
    private readonly string _holderPid;
    private int _disposed;

    private UserNamespace(IdMap idMap, Process holder, Task<string> holderErrors)
    {
        IdMap = idMap;
        _holder = holder;
        _holderErrors = holderErrors;
        HolderProcessId = holder.Id;
        _holderPid = HolderProcessId.ToString(CultureInfo.InvariantCulture);
    }

    /// <summary>The id map this namespace was created with.</summary>
    public IdMap IdMap { get; }

    /// <summary>True when there is no user namespace: commands run as host root (privileged container).</summary>
    public bool IsPrivileged => IdMap.IsPrivileged;

    /// <summary>The pid of the holder process whose namespaces commands join.</summary>
    public int HolderProcessId { get; }

    /// <summary>Creates the namespaces and writes the id map.</summary>
    /// <exception cref="InvalidOperationException">unshare failed (its stderr is in the message) or did not start in time.</exception>
    public static async Task<UserNamespace> CreateAsync(IdMap idMap, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(idMap);
        List<string> arguments = ["--mount", "--propagation", "private", "--"];
        if (!idMap.IsPrivileged)
        {
            arguments.AddRange(["unshare", "--user", "--"]);
        }
        arguments.Add("cat");
        Process holder = Process.Start(ProcessRunner.CreateStartInfo("unshare", arguments))
            ?? throw new InvalidOperationException("could not start unshare");
        var ns = new UserNamespace(idMap, holder, holder.StandardError.ReadToEndAsync(CancellationToken.None));
        try
        {
            await ns.WaitForNamespacesAsync(cancellationToken);
            if (!idMap.IsPrivileged)
            {
                // gid_map first: the order does not matter to a privileged writer, but it is the order newgidmap/newuidmap use.
                WriteMap(holder.Id, "gid_map", idMap.ToProcMapText(IdKind.Group));
                WriteMap(holder.Id, "uid_map", idMap.ToProcMapText(IdKind.User));
            }
            return ns;
        }
        catch
        {
            await ns.DisposeAsync();
            throw;
        }
    }

    /// <summary>A command run as the container's root inside the namespaces (host root in the private mount namespace if privileged).</summary>
    public UserNamespaceCommand Command(string fileName, params IEnumerable<string> arguments) => new(this, fileName, arguments);

    /// <summary>
    /// nsenter arguments for a command in this namespace: as uid/gid 0 in the user namespace, or, with
    /// <paramref name="asHostRoot"/> (or a privileged map), as host root in the private mount namespace only.
    /// </summary>
    internal IEnumerable<string> NsenterArguments(bool asHostRoot, string fileName, IEnumerable<string> arguments)
    {
        ObjectDisposedException.ThrowIf(_disposed != 0, this);
        List<string> list = ["--target", _holderPid, "--mount"];
        if (!asHostRoot && !IsPrivileged)
        {
            list.AddRange(["--user", "--setuid", "0", "--setgid", "0"]);
        }
        list.Add("--");
        list.Add(fileName);
        list.AddRange(arguments);
        return list;
    }

    /// <summary>
    /// Makes <paramref name="directory"/>, which sits under a root-only parent the container's root cannot traverse
    /// (a restored rootfs, so that host users cannot reach its setuid files), reachable by the container's root in this
    /// namespace only: it is bind-mounted over its parent in the private mount namespace. Returns the path at which it
    /// is reached there (the parent's path). The host's view of the tree is unchanged.
    /// </summary>
    /// <exception cref="InvalidOperationException">mount failed (its stderr is in the message).</exception>
    public async Task<string> BindOverParentAsync(string directory, CancellationToken cancellationToken = default)
    {
        string full = System.IO.Path.TrimEndingDirectorySeparator(System.IO.Path.GetFullPath(directory));
        string parent = System.IO.Path.GetDirectoryName(full) ?? throw new ArgumentException($"{directory} has no parent", nameof(directory));
        ProcessResult result = await RunAsHostRootAsync("mount", ["--bind", "--", full, parent], cancellationToken);
        if (result.ExitCode != 0)
        {
            throw new InvalidOperationException($"binding {full} over {parent} in the private mount namespace failed: {result.StandardError.Trim()}");
        }
        return parent;
    }

    /// <summary>Runs a program as host root inside the private mount namespace (to build and tear down views).</summary>
    internal Task<ProcessResult> RunAsHostRootAsync(string fileName, IEnumerable<string> arguments, CancellationToken cancellationToken) =>
        ProcessRunner.RunAsync("nsenter", NsenterArguments(asHostRoot: true, fileName, arguments), cancellationToken);

    /// <summary>Runs a program to completion as the container's root.</summary>
    internal Task<ProcessResult> RunAsync(string fileName, IEnumerable<string> arguments, CancellationToken cancellationToken) =>
        ProcessRunner.RunAsync(Command(fileName, arguments).CreateStartInfo(), cancellationToken);

    /// <summary>Ends the holder. The namespaces disappear with their last process, and with them every private mount.</summary>
    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }
        try
        {
            _holder.StandardInput.Close();
            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(5));
            await _holder.WaitForExitAsync(timeout.Token);
        }
        catch (Exception e) when (e is OperationCanceledException or IOException or InvalidOperationException)
        {
            ProcessRunner.KillAndWait(_holder);
        }
        ExternalProcess.DisposeWithPipes(_holder);
    }

    private async Task WaitForNamespacesAsync(CancellationToken cancellationToken)
    {
        // unshare keeps its pid through both execs; the namespaces are in place once its links differ from ours.
        string[] kinds = IsPrivileged ? ["mnt"] : ["mnt", "user"];
        var stopwatch = Stopwatch.StartNew();
        while (true)
        {
            if (_holder.HasExited)
            {
                throw new InvalidOperationException($"unshare exited with {_holder.ExitCode} before the namespaces existed: {(await _holderErrors).Trim()}");
            }
            if (kinds.All(kind => NamespaceOf("self", kind) != NamespaceOf(_holderPid, kind)))
            {
                return;
            }
            if (stopwatch.Elapsed > StartTimeout)
            {
                throw new InvalidOperationException($"unshare did not create the namespaces within {StartTimeout.TotalSeconds} s");
            }
            await Task.Delay(5, cancellationToken);
        }
    }

    private static string? NamespaceOf(string pid, string kind)
    {
        try
        {
            return new FileInfo($"/proc/{pid}/ns/{kind}").LinkTarget;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return null;
        }
    }

    private static void WriteMap(int pid, string file, string text)
    {
        // The kernel takes the whole map in one write() at offset 0 and refuses a second write: no buffering, no retry.
        string path = $"/proc/{pid}/{file}";
        try
        {
            using var stream = new FileStream(path, FileMode.Open, FileAccess.Write, FileShare.ReadWrite, bufferSize: 0);
            stream.Write(Encoding.ASCII.GetBytes(text));
        }
        catch (IOException e)
        {
            throw new InvalidOperationException($"writing {path} ('{text.Trim().Replace('\n', ';')}') failed: {e.Message}", e);
        }
    }
}
