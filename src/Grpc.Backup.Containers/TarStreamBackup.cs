using Grpc.Backup.Protocol.Containers;
using Grpc.Backup.Protocol;
using System.Diagnostics;
using Grpc.Backup.Containers.Internal;
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
    private readonly ContainerBackupView _view;
    private int _disposed;

    private TarStreamBackup(SafeFileHandle readHandle, ContainerBackupView view, CancellationTokenSource abort,
        Func<CancellationToken, Task<TarStreamBackupResult>> run)
    {
        ReadHandle = readHandle;
        _view = view;
        _abort = abort;
        Completion = run(abort.Token);
    }

    /// <summary>
    /// The read end of the pipe carrying the tar stream; EOF ends it. Pass it to the provider, then dispose it: while
    /// this process keeps it open, a provider that goes away cannot make the writer fail.
    /// </summary>
    public SafeFileHandle ReadHandle { get; }

    /// <summary>What to report as BackupContainerRequest.sources: "." and "./mnt/data"... ("." alone in suspend mode).</summary>
    public IReadOnlyList<string> Sources => _view.Sources;

    /// <summary>True when the container is privileged and is read as host root.</summary>
    public bool IsPrivileged => _view.IsPrivileged;

    /// <summary>Completes when tar has finished, the pipe is closed and everything is cleaned up.</summary>
    /// <exception cref="ContainerBackupException">tar failed, the reader went away, or the backup was cancelled.</exception>
    public Task<TarStreamBackupResult> Completion { get; }

    internal int HolderProcessId => _view.Namespace.HolderProcessId;

    internal string WorkDirectory => _view.WorkDirectory;

    /// <summary>Builds the view and starts tar. Cancelling <paramref name="cancellationToken"/> later also aborts the running backup.</summary>
    /// <exception cref="ContainerBackupException">The options are invalid or the view could not be built; nothing is left behind.</exception>
    public static async Task<TarStreamBackup> StartAsync(ContainerBackupOptions options, CancellationToken cancellationToken = default)
    {
        ContainerBackupView view = await ContainerBackupView.CreateAsync(options, cancellationToken);
        var abort = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        Process? tar = null;
        SafeFileHandle? readEnd = null;
        SafeFileHandle? writeEnd = null;
        try
        {
            (readEnd, writeEnd) = OsPipe.Create();
            tar = view.Namespace.Command("tar", TarCreateArguments.Build(view.Path, view.TarExcludeArguments)).Start();
            Process started = tar;
            SafeFileHandle pipe = writeEnd;
            return new TarStreamBackup(readEnd, view, abort, token => RunAsync(started, pipe, options.BytesPerSecond, options.ComputeFileManifest, view, token));
        }
        catch (Exception e)
        {
            if (tar is not null)
            {
                ProcessRunner.KillAndDispose(tar);
            }
            readEnd?.Dispose();
            writeEnd?.Dispose();
            await view.DisposeAsync();
            abort.Dispose();
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

    private static async Task<TarStreamBackupResult> RunAsync(Process tar, SafeFileHandle writeEnd, ulong bytesPerSecond, bool computeManifest,
        ContainerBackupView view, CancellationToken cancellationToken)
    {
        var warnings = new List<string>(view.Warnings);
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
            var throttle = new BandwidthThrottle(bytesPerSecond);
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
            ProcessRunner.KillAndDispose(tar);
            writeEnd.Dispose();
        }
        (FileManifest? manifest, TimeSpan manifestDuration) = failure is null && computeManifest
            ? await view.TryComputeManifestAsync(warnings, cancellationToken)
            : (null, TimeSpan.Zero);
        warnings.AddRange(await view.CloseAsync());
        return failure is null ? new TarStreamBackupResult(written, warnings, view.IsPrivileged, manifest, manifestDuration) : throw failure;
    }
}
