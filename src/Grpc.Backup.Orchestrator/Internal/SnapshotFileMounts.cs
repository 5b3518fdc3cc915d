using System.Diagnostics;
using Grpc.Backup.Nbd;
using Grpc.Backup.Protocol;
using Grpc.Backup.Qemu;

namespace Grpc.Backup.Orchestrator.Internal;

/// <summary>
/// The FILE_HANDLE mechanism's files: each disk's snapshot NBD export mounted as a file with <c>nbdfuse</c> (libnbd), in
/// a 0700 directory private to the host. The host opens the file and passes the fd; a provider never sees the path.
/// fallocate(PUNCH_HOLE) on it becomes an NBD TRIM, which discards from the fleecing image. nbdfuse never talks to
/// QEMU: it connects to an <see cref="NbdGuard"/> listening in the same private directory, which rounds those TRIMs
/// to whole copy-before-write clusters and serves that one export only.
/// </summary>
/// <remarks>
/// Not QEMU's own FUSE export (<c>block-export-add type=fuse</c>): on QEMU 7.2 a FUSE export of a snapshot-access node
/// over qcow2 returned data newer than the instant while the guest wrote (its FUSE handlers run synchronous block I/O
/// in nested event loops), where the NBD export of the same node stayed exact. Measured on this machine; see CONTRIBUTING.
/// Disposal always unmounts (lazily, so an fd a killed or hanging provider still holds cannot keep it), ends every
/// nbdfuse process, stops every guard and removes the directory, whatever state the mounts are in.
/// </remarks>
internal sealed class SnapshotFileMounts : IAsyncDisposable
{
    private static readonly TimeSpan StartTimeout = TimeSpan.FromSeconds(30);

    private readonly string _root;
    private readonly List<(string Directory, Process Process)> _mounts = [];
    private readonly List<NbdGuard> _guards = [];

    private SnapshotFileMounts(string root) => _root = root;

    /// <summary>Creates the private directory; it must not exist (someone else could have prepared it).</summary>
    public static SnapshotFileMounts Create(string root)
    {
        if (Directory.Exists(root) || File.Exists(root))
        {
            throw new BackupException($"the snapshot mount directory {root} already exists");
        }
        Directory.CreateDirectory(root, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        return new SnapshotFileMounts(root);
    }

    /// <summary>Mounts one export and returns the path of its file once nbdfuse serves it.</summary>
    /// <param name="bandwidth">The backup's bandwidth limit (every guard of the backup shares it), or null.</param>
    public async Task<string> MountAsync(SnapshotExport export, BandwidthThrottle? bandwidth, CancellationToken cancellationToken)
    {
        string exportName = export.ExportName;
        NbdGuard guard = await SnapshotGuards.StartAsync(export, minimumBlockSize: 1, bandwidth, cancellationToken);
        _guards.Add(guard);
        string nbdSocketPath = Path.Combine(_root, $"disk{_mounts.Count}.sock");
        guard.Listen(nbdSocketPath);
        string directory = Path.Combine(_root, $"disk{_mounts.Count}");
        Directory.CreateDirectory(directory, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        string pidFile = directory + ".pid";
        var start = new ProcessStartInfo("nbdfuse")
        {
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        // allow_other: fstat of a FUSE file is refused to any uid but the mounter's without it, and the provider runs
        // as another uid; the 0700 directory still keeps everyone else from opening it by path.
        foreach (string argument in (string[])["-o", "allow_other", "-P", pidFile, directory,
            $"nbd+unix:///{Uri.EscapeDataString(exportName)}?socket={nbdSocketPath}"])
        {
            start.ArgumentList.Add(argument);
        }
        Process process = Process.Start(start) ?? throw new BackupException("nbdfuse did not start");
        _mounts.Add((directory, process));
        process.BeginOutputReadLine();
        var stderr = new System.Text.StringBuilder();
        process.ErrorDataReceived += (_, e) => { lock (stderr) { stderr.AppendLine(e.Data); } };
        process.BeginErrorReadLine();

        // nbdfuse writes its pid file once the mount is serving.
        var deadline = Stopwatch.StartNew();
        while (!File.Exists(pidFile))
        {
            if (process.HasExited || deadline.Elapsed > StartTimeout)
            {
                lock (stderr)
                {
                    throw new BackupException($"nbdfuse could not mount export '{exportName}': {stderr.ToString().Trim()}");
                }
            }
            await Task.Delay(20, cancellationToken);
        }
        return Path.Combine(directory, "nbd");
    }

    public async ValueTask DisposeAsync()
    {
        foreach (var (directory, process) in _mounts)
        {
            if (IsMounted(directory))
            {
                // Lazy: a provider that still holds the fd cannot block the unmount; its reads fail from now on.
                using var umount = Process.Start(new ProcessStartInfo("umount", ["-l", directory]) { UseShellExecute = false });
                if (umount is not null)
                {
                    await umount.WaitForExitAsync(CancellationToken.None);
                }
            }
            if (!process.WaitForExit(TimeSpan.FromSeconds(10)))
            {
                process.Kill();
                await process.WaitForExitAsync(CancellationToken.None);
            }
            process.Dispose();
            File.Delete(directory + ".pid");
            Directory.Delete(directory);
        }
        foreach (NbdGuard guard in _guards)
        {
            await guard.DisposeAsync();
        }
        Directory.Delete(_root);
    }

    /// <summary>Whether <paramref name="path"/> is a mount point in this mount namespace (/proc/self/mountinfo, field 5).</summary>
    private static bool IsMounted(string path) =>
        File.ReadLines("/proc/self/mountinfo").Any(line => line.Split(' ') is { Length: > 4 } fields
            && string.Equals(fields[4].Replace("\\040", " ", StringComparison.Ordinal), path, StringComparison.Ordinal));
}
