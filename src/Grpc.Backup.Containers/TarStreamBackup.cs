using System.Diagnostics;
using System.Globalization;
using Grpc.Backup.Containers.Internal;
using Grpc.Backup.Containers.Internal.Interop;
using Microsoft.Win32.SafeHandles;

namespace Grpc.Backup.Containers;

/// <summary>
/// The host side of a TAR_STREAM container backup: builds a consistent view (<see cref="ContainerBackupMode"/>) in a
/// private mount namespace, runs GNU tar inside the container's user namespace over it, and delivers the POSIX pax
/// stream (container-view numeric owners) through an OS pipe whose read end, <see cref="ReadHandle"/>, is passed to
/// the provider (FdKind PIPE). The host, not the provider, enforces the bandwidth limit on that pipe.
/// </summary>
/// <remarks>
/// tar runs as the container's root, so it can only read what that root can: a symlink such as
/// <c>etc/leak -&gt; /etc/shadow</c> is stored as a symlink (tar never follows one), and a root-only host file bound
/// into the container is unreadable, left out and reported in <see cref="TarStreamBackupResult.Warnings"/>
/// (<c>--ignore-failed-read</c>), without failing the backup. tar's exit status 1 ("file changed as we read it")
/// is also a warning: the archive is complete and well formed, only that file's content may be torn. Exit status 2
/// and above fail the backup; the pipe still reaches EOF, so the caller must fail the provider call on a faulted
/// <see cref="Completion"/>.
/// </remarks>
public sealed class TarStreamBackup : IAsyncDisposable
{
    private const int CopyBufferSize = 64 * 1024;

    private readonly CancellationTokenSource _abort;
    private readonly UserNamespace _namespace;
    private int _disposed;

    private TarStreamBackup(SafeFileHandle readHandle, IReadOnlyList<string> sources, UserNamespace userNamespace, string workDirectory,
        CancellationTokenSource abort, Func<CancellationToken, Task<TarStreamBackupResult>> run)
    {
        ReadHandle = readHandle;
        Sources = sources;
        _namespace = userNamespace;
        WorkDirectory = workDirectory;
        _abort = abort;
        Completion = run(abort.Token);
    }

    /// <summary>
    /// The read end of the pipe carrying the tar stream; EOF ends it. Pass it to the provider, then dispose it: while
    /// this process keeps it open, a provider that goes away cannot make the writer fail.
    /// </summary>
    public SafeFileHandle ReadHandle { get; }

    /// <summary>What to report as BackupContainerRequest.sources: "." and "./mnt/data"... ("." alone in suspend mode).</summary>
    public IReadOnlyList<string> Sources { get; }

    /// <summary>True when the container is privileged and is read as host root.</summary>
    public bool IsPrivileged => _namespace.IsPrivileged;

    /// <summary>Completes when tar has finished, the pipe is closed and everything is cleaned up.</summary>
    /// <exception cref="ContainerBackupException">tar failed, the reader went away, or the backup was cancelled.</exception>
    public Task<TarStreamBackupResult> Completion { get; }

    internal int HolderProcessId => _namespace.HolderProcessId;

    internal string WorkDirectory { get; }

    /// <summary>Builds the view and starts tar. Cancelling <paramref name="cancellationToken"/> later also aborts the running backup.</summary>
    /// <exception cref="ContainerBackupException">The options are invalid or the view could not be built; nothing is left behind.</exception>
    public static async Task<TarStreamBackup> StartAsync(ContainerBackupOptions options, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(options);
        (IReadOnlyList<IncludedVolume> included, IReadOnlyList<string> excluded, IReadOnlyList<string> excludeArguments) = CheckOptions(options);

        var cleanup = new CleanupStack();
        var abort = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        Process? tar = null;
        SafeFileHandle? readEnd = null;
        SafeFileHandle? writeEnd = null;
        try
        {
            string workDirectory = CreateWorkDirectory(options.TemporaryDirectory, cleanup);
            UserNamespace ns = await UserNamespace.CreateAsync(options.IdMap, cancellationToken);
            cleanup.Push("end the user namespace", async () => await ns.DisposeAsync());

            var context = new ViewContext(options, ns, workDirectory, cleanup, included, excluded);
            ContainerView view = options.Mode switch
            {
                ContainerBackupMode.Stop => await StopModeView.CreateAsync(context, cancellationToken),
                ContainerBackupMode.Suspend => await SuspendModeView.CreateAsync(context, cancellationToken),
                ContainerBackupMode.Snapshot => await SnapshotModeView.CreateAsync(context, cancellationToken),
                _ => throw new ContainerBackupException($"unknown backup mode {options.Mode}"),
            };
            var warnings = new List<string>();
            if (ns.IsPrivileged)
            {
                warnings.Add("the container is privileged (no id map, or its root is host root): it was read as host root and "
                    + "can only be restored as unprivileged, which might not work in all cases");
            }
            warnings.AddRange(view.Warnings);

            (readEnd, writeEnd) = OsPipe.Create();
            tar = ns.Command("tar", TarCreateArguments.Build(view.Path, excludeArguments)).Start();
            Process started = tar;
            SafeFileHandle pipe = writeEnd;
            bool privileged = ns.IsPrivileged;
            return new TarStreamBackup(readEnd, view.Sources, ns, workDirectory, abort,
                token => RunAsync(started, pipe, options.BytesPerSecond, privileged, warnings, cleanup, token));
        }
        catch (Exception e)
        {
            if (tar is not null)
            {
                ProcessRunner.KillAndWait(tar);
                tar.Dispose();
            }
            readEnd?.Dispose();
            writeEnd?.Dispose();
            await cleanup.RunAsync();
            abort.Dispose();
            if (e is ContainerBackupException or OperationCanceledException)
            {
                throw;
            }
            throw new ContainerBackupException($"container backup could not start: {e.Message}", e);
        }
    }

    /// <summary>Aborts a running backup (tar is killed, the pipe closed) and waits until everything is cleaned up.</summary>
    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }
        await _abort.CancelAsync();
        try
        {
            await Completion;
        }
#pragma warning disable CA1031 // Disposal only waits; the outcome belongs to whoever awaits Completion.
        catch (Exception)
#pragma warning restore CA1031
        {
        }
        ReadHandle.Dispose();
        _abort.Dispose();
    }

    private static (IReadOnlyList<IncludedVolume>, IReadOnlyList<string>, IReadOnlyList<string>) CheckOptions(ContainerBackupOptions options)
    {
        ArgumentNullException.ThrowIfNull(options.IdMap);
        if (!Directory.Exists(options.RootFileSystem))
        {
            throw new ContainerBackupException($"root file system '{options.RootFileSystem}' is not a directory");
        }
        if (options.Mode == ContainerBackupMode.Suspend && options.Freezer is null)
        {
            throw new ContainerBackupException("suspend mode needs a freezer (ContainerBackupOptions.Freezer)");
        }
        var included = new List<IncludedVolume>();
        var excluded = new List<string>();
        var seen = new HashSet<string>(StringComparer.Ordinal);
        foreach (ContainerMountPoint mountPoint in options.MountPoints)
        {
            string relative = ContainerPaths.ToRelative(mountPoint.ContainerPath);
            if (!seen.Add(relative))
            {
                throw new ContainerBackupException($"mount point /{relative} is listed twice");
            }
            if (!mountPoint.Backup)
            {
                excluded.Add(relative);
                continue;
            }
            string host = Path.TrimEndingDirectorySeparator(Path.GetFullPath(mountPoint.HostPath));
            bool isDirectory = Directory.Exists(host);
            if (!isDirectory && !File.Exists(host))
            {
                throw new ContainerBackupException($"mount point /{relative}: host path '{host}' does not exist");
            }
            included.Add(new IncludedVolume(relative, host, isDirectory));
        }
        try
        {
            // Translated before anything is built, so a bad pattern costs nothing to clean up.
            return (included, excluded, ExcludePatterns.ToTarArguments(options.ExcludePatterns));
        }
        catch (ArgumentException e)
        {
            throw new ContainerBackupException(e.Message, e);
        }
    }

    private static string CreateWorkDirectory(string parent, CleanupStack cleanup)
    {
        // Traversable but not listable: the container's root must reach the view and the copy inside, nobody else
        // needs to see what is there. mkdir (not CreateDirectory) so that a name planted in a shared /var/tmp fails.
        string path = Path.Combine(Path.GetFullPath(parent), "grpc-backup-ct-" + Guid.NewGuid().ToString("N", CultureInfo.InvariantCulture)[..16]);
        if (Libc.mkdir(path, Convert.ToUInt32("711", 8)) != 0)
        {
            throw new ContainerBackupException($"cannot create the work directory '{path}' (errno {System.Runtime.InteropServices.Marshal.GetLastPInvokeError()})");
        }
        File.SetUnixFileMode(path, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute | UnixFileMode.GroupExecute | UnixFileMode.OtherExecute);
        cleanup.Push($"remove {path}", () =>
        {
            // Directory.Delete removes symlinks, it does not follow them.
            Directory.Delete(path, recursive: true);
            return Task.CompletedTask;
        });
        return path;
    }

    private static async Task<TarStreamBackupResult> RunAsync(Process tar, SafeFileHandle writeEnd, ulong bytesPerSecond, bool privileged, List<string> warnings,
        CleanupStack cleanup, CancellationToken cancellationToken)
    {
        // Off the caller's stack: StartAsync returns as soon as tar runs.
        await Task.Yield();
        long written = 0;
        Exception? failure = null;
        Task<string> errors = tar.StandardError.ReadToEndAsync(CancellationToken.None);
        try
        {
            tar.StandardInput.Close();
            // A blocked read of tar's stdout cannot be cancelled; killing tar ends it with EOF.
            await using CancellationTokenRegistration kill = cancellationToken.Register(() => ProcessRunner.KillAndWait(tar));
            await using var throttle = new BandwidthThrottle(bytesPerSecond);
            using (var writer = new PipeWriter(writeEnd))
            {
                byte[] buffer = new byte[throttle.ChunkSize(CopyBufferSize)];
                Stream output = tar.StandardOutput.BaseStream;
                int read;
                while ((read = await output.ReadAsync(buffer, cancellationToken)) > 0)
                {
                    await throttle.WaitAsync(read, cancellationToken);
                    await writer.WriteAsync(buffer.AsMemory(0, read), cancellationToken);
                    written += read;
                }
                await tar.WaitForExitAsync(cancellationToken);
            }
            // Only now is the write end closed: the provider sees EOF after tar's last byte and its exit.
            string stderr = await errors;
            warnings.AddRange(stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries));
            switch (tar.ExitCode)
            {
                case 0:
                    break;
                case 1:
                    warnings.Add("tar: some files changed while they were read (exit status 1); the archive is complete but their content may be inconsistent");
                    break;
                default:
                    failure = new ContainerBackupException($"tar failed with exit status {tar.ExitCode}: {stderr.Trim()}");
                    break;
            }
        }
        catch (OperationCanceledException e)
        {
            failure = new ContainerBackupException("the container backup was cancelled", e);
        }
        catch (IOException e)
        {
            failure = new ContainerBackupException($"the tar stream could not be delivered: {e.Message}", e);
        }
        finally
        {
            ProcessRunner.KillAndWait(tar);
            tar.Dispose();
            writeEnd.Dispose();
        }
        warnings.AddRange(await cleanup.RunAsync());
        return failure is null ? new TarStreamBackupResult(written, warnings, privileged) : throw failure;
    }
}
