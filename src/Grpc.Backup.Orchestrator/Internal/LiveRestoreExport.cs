using System.Net.Sockets;
using System.Runtime.CompilerServices;
using Grpc.Backup.Nbd;
using Grpc.Backup.Protocol.V1;
using Grpc.Backup.Qemu;
using Microsoft.Win32.SafeHandles;

namespace Grpc.Backup.Orchestrator.Internal;

/// <summary>
/// One device's claimed restore source served to QEMU only through the host's <see cref="NbdGuard"/>, on a 0600 socket
/// in a private 0700 directory: an NBD source is the guard's upstream itself (the guard's own client parses and checks
/// every reply; a URI source is connected again through the same checks when QEMU reconnects); a file or block device is
/// first served raw (never probed) by a private read-only qemu-nbd. The guard's size is checked against the archive's
/// before QEMU is told the socket exists.
/// </summary>
internal sealed class LiveRestoreExport : IAsyncDisposable
{
    private readonly DirectoryInfo _directory;
    private readonly NbdGuard _guard;
    private readonly OfflineImageExport? _fileServer;
    private readonly SafeFileHandle? _file;
    private readonly StrongBox<int> _reconnections;

    private LiveRestoreExport(DirectoryInfo directory, NbdGuard guard, OfflineImageExport? fileServer, SafeFileHandle? file, StrongBox<int> reconnections)
    {
        _reconnections = reconnections;
        _directory = directory;
        _guard = guard;
        _fileServer = fileServer;
        _file = file;
    }

    /// <summary>The guard's listening socket (QEMU's NBD client connects here).</summary>
    public string SocketPath => Path.Combine(_directory.FullName, "guard.sock");

    public string ExportName => _guard.ExportName;

    /// <summary>Upstream connections made again after the first (QEMU reconnected and the export was reached).</summary>
    public int Reconnections => Volatile.Read(ref _reconnections.Value);

    /// <summary>
    /// Serves <paramref name="claimed"/>. When QEMU reconnects after an NBD source's connection was lost, a URI source is
    /// connected again; when that fails, or for a passed socket, <paramref name="reclaim"/> asks the provider for the
    /// source again (a provider restarted, as systemd would, has a new server). Whatever fails there is an
    /// <see cref="IOException"/> for the guard: QEMU's attempt fails and it tries again later.
    /// </summary>
    public static async Task<LiveRestoreExport> StartAsync(ClaimedRestoreSource claimed, VolumeSize volume,
        Func<CancellationToken, Task<Socket>> reclaim, CancellationToken cancellationToken)
    {
        DirectoryInfo directory = Directory.CreateTempSubdirectory("grpc-backup-live-");
        File.SetUnixFileMode(directory.FullName, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        OfflineImageExport? fileServer = null;
        SafeFileHandle? file = null;
        NbdGuard? guard = null;
        var reconnections = new StrongBox<int>();
        try
        {
            NbdGuardOptions options;
            if (claimed.IsFile)
            {
                file = claimed.TakeFile();
                string upstream = Path.Combine(directory.FullName, "source.sock");
                fileServer = await OfflineImageExport.StartAsync(new OfflineImageExportOptions
                {
                    // qemu-nbd (root, as the host) reads the claimed file through this process's fd: the object checked.
                    ImagePath = $"/proc/{Environment.ProcessId}/fd/{file.DangerousGetHandle()}",
                    Format = "raw",
                    DeviceName = volume.DeviceName,
                    NbdSocketPath = upstream,
                    BitmapName = "none",
                    Bitmap = BitmapRequest.None,
                }, cancellationToken);
                options = new NbdGuardOptions { UpstreamSocketPath = upstream, ExportName = volume.DeviceName };
            }
            else
            {
                Socket? first = claimed.TakeNbdSocket();
                options = new NbdGuardOptions
                {
                    ExportName = claimed.ExportName,
                    UpstreamConnector = async token =>
                    {
                        if (Interlocked.Exchange(ref first, null) is { } socket)
                        {
                            return socket;
                        }
                        Socket again = await ConnectAgainAsync(claimed, volume, reclaim, token);
                        Interlocked.Increment(ref reconnections.Value);
                        return again;
                    },
                };
            }
            guard = await NbdGuard.StartAsync(options, cancellationToken);
            ClaimedRestoreSource.CheckNbdSize(volume, guard.Size);
            var export = new LiveRestoreExport(directory, guard, fileServer, file, reconnections);
            guard.Listen(export.SocketPath);
            return export;
        }
        catch
        {
            if (guard is not null)
            {
                await guard.DisposeAsync();
            }
            if (fileServer is not null)
            {
                await fileServer.DisposeAsync();
            }
            file?.Dispose();
            directory.Delete(recursive: true);
            throw;
        }
    }

    private static async Task<Socket> ConnectAgainAsync(ClaimedRestoreSource claimed, VolumeSize volume, Func<CancellationToken, Task<Socket>> reclaim,
        CancellationToken cancellationToken)
    {
        try
        {
            if (claimed.CanReconnect)
            {
                try
                {
                    return await claimed.ConnectAgainAsync(cancellationToken);
                }
                catch (Exception e) when (e is IOException or SocketException or BackupException)
                {
                    // The provider's server is gone (its socket with it): ask the provider again below.
                }
            }
            return await reclaim(cancellationToken);
        }
        catch (Exception e) when (e is not (IOException or OperationCanceledException))
        {
            // An RPC error, an open circuit breaker, a refused claim: the export is not reachable yet.
            throw new IOException($"{volume.DeviceName}: the provider's export cannot be reached again: {e.Message}", e);
        }
    }

    public async ValueTask DisposeAsync()
    {
        await _guard.DisposeAsync();
        if (_fileServer is not null)
        {
            await _fileServer.DisposeAsync();
        }
        _file?.Dispose();
        try
        {
            _directory.Delete(recursive: true);
        }
        catch (IOException)
        {
            // Already gone: nothing of this restore's is left there.
        }
    }
}
