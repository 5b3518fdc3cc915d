using System.Globalization;
using Grpc.Backup.Containers.Internal;
using Grpc.Backup.Containers.Internal.Interop;
using Grpc.Backup.Protocol.Containers;

namespace Grpc.Backup.Containers;

/// <summary>
/// A consistent view of a container's files (<see cref="ContainerBackupMode"/>), mounted in a private mount namespace
/// that belongs to the container's user namespace holder, ready for a reader that runs as the container's root: the
/// host's own tar (<see cref="TarStreamBackup"/>, mechanism TAR_STREAM) or the provider's worker
/// (<see cref="ContainerWorkerProcess"/>, mechanism DIRECTORY). Disposing it unmounts the view, removes the work
/// directory and ends the namespaces, whatever happened before.
/// </summary>
public sealed class ContainerBackupView : IAsyncDisposable
{
    private readonly CleanupStack _cleanup;
    private int _closed;

    private ContainerBackupView(UserNamespace userNamespace, string path, IReadOnlyList<string> sources, IReadOnlyList<string> warnings,
        IReadOnlyList<string> tarExcludeArguments, string workDirectory, CleanupStack cleanup)
    {
        Namespace = userNamespace;
        Path = path;
        Sources = sources;
        Warnings = warnings;
        TarExcludeArguments = tarExcludeArguments;
        WorkDirectory = workDirectory;
        _cleanup = cleanup;
    }

    /// <summary>The container's user namespace (and the private mount namespace the view lives in).</summary>
    public UserNamespace Namespace { get; }

    /// <summary>The view's root directory, as seen inside <see cref="Namespace"/> (not from the host).</summary>
    public string Path { get; }

    /// <summary>What to report as BackupContainerRequest.sources: "." and "./mnt/data"... ("." alone in suspend mode).</summary>
    public IReadOnlyList<string> Sources { get; }

    /// <summary>What went wrong without failing (a privileged container, files the container's root cannot read).</summary>
    public IReadOnlyList<string> Warnings { get; }

    /// <summary>The options' exclusion patterns as GNU tar arguments (<see cref="ExcludePatterns"/>).</summary>
    public IReadOnlyList<string> TarExcludeArguments { get; }

    /// <summary>True when the container is privileged and is read as host root.</summary>
    public bool IsPrivileged => Namespace.IsPrivileged;

    internal string WorkDirectory { get; }

    /// <summary>Checks the options and builds the view.</summary>
    /// <exception cref="ContainerBackupException">The options are invalid or the view could not be built; nothing is left behind.</exception>
    public static async Task<ContainerBackupView> CreateAsync(ContainerBackupOptions options, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(options);
        (IReadOnlyList<IncludedVolume> included, IReadOnlyList<string> excluded, IReadOnlyList<string> excludeArguments) = CheckOptions(options);
        var cleanup = new CleanupStack();
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
            return new ContainerBackupView(ns, view.Path, view.Sources, warnings, excludeArguments, workDirectory, cleanup);
        }
        catch (Exception e)
        {
            await cleanup.RunAsync();
            if (e is ContainerBackupException or OperationCanceledException)
            {
                throw;
            }
            throw new ContainerBackupException($"the container's view could not be built: {e.Message}", e);
        }
    }

    /// <summary>Tears the view down; returns one message per cleanup step that failed (nothing is retried).</summary>
    /// <summary>
    /// The view's <see cref="FileManifest"/>, walked with the backup's exclusions as the container's root; a failure is
    /// a warning (the backup itself is fine, it only cannot be verified by manifest) and gives null.
    /// </summary>
    public async Task<(FileManifest? Manifest, TimeSpan Duration)> TryComputeManifestAsync(ICollection<string> warnings,
        CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(warnings);
        var clock = System.Diagnostics.Stopwatch.StartNew();
        try
        {
            return (await FileManifest.ComputeAsync(Namespace, Path, TarExcludeArguments, cancellationToken), clock.Elapsed);
        }
        catch (Exception e) when (e is ContainerBackupException or InvalidDataException or IOException or FormatException)
        {
            warnings.Add($"no file manifest recorded: {e.Message}");
            return (null, clock.Elapsed);
        }
    }

    public async Task<IReadOnlyList<string>> CloseAsync() =>
        Interlocked.Exchange(ref _closed, 1) == 0 ? await _cleanup.RunAsync() : [];

    public async ValueTask DisposeAsync() => await CloseAsync();

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
            string host = System.IO.Path.TrimEndingDirectorySeparator(System.IO.Path.GetFullPath(mountPoint.HostPath));
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
        string path = System.IO.Path.Combine(System.IO.Path.GetFullPath(parent), "grpc-backup-ct-" + Guid.NewGuid().ToString("N", CultureInfo.InvariantCulture)[..16]);
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
}
