using System.Net.Sockets;
using Grpc.Backup.Nbd;
using Grpc.Backup.Protocol;
using Grpc.Backup.Qemu;
using Grpc.Backup.Transport;
using Microsoft.Win32.SafeHandles;

namespace Grpc.Backup.Orchestrator.Internal;

/// <summary>
/// The host's copies of what it passes for one BackupVm: guarded NBD sockets or opened snapshot files. An NBD source
/// is never a connection to QEMU: it is one end of a socket pair served by an <see cref="NbdGuard"/>, which has
/// already completed QEMU's handshake. At disposal the sockets are shut down (shutdown acts on the connection, not the
/// fd, so a provider's copies go dead too, even if a provider or a transfer in flight still holds them), every fd is
/// closed and every guard stopped, so QEMU sees its NBD clients end now. A file needs no such step: teardown deletes
/// its FUSE mount, which unmounts it under any fd still open.
/// </summary>
internal sealed class PassedVolumeSources : IAsyncDisposable
{
    private readonly List<Socket> _sockets = [];
    private readonly List<NbdGuard> _guards = [];
    private readonly List<SafeFileHandle> _files = [];
    private readonly List<FdToSend> _toSend = [];

    /// <summary>Guards the export and keeps the client end of the guard's socket pair for passing.</summary>
    /// <param name="bandwidth">The backup's bandwidth limit (every guard of the backup shares it), or null.</param>
    public async Task ConnectNbdAsync(SnapshotExport export, BandwidthThrottle? bandwidth, CancellationToken cancellationToken)
    {
        NbdGuard guard = await SnapshotGuards.StartAsync(export, minimumBlockSize: null, bandwidth, cancellationToken);
        _guards.Add(guard);
        Socket socket = await guard.ConnectAsync(cancellationToken);
        _sockets.Add(socket);
        _toSend.Add(new FdToSend(socket.SafeHandle, FdKind.NbdSocket));
    }

    /// <summary>Opens the snapshot's FUSE file read-write: fallocate(PUNCH_HOLE) needs a writable fd.</summary>
    public void AddFile(string path)
    {
        SafeFileHandle handle = File.OpenHandle(path, FileMode.Open, FileAccess.ReadWrite, FileShare.ReadWrite);
        _files.Add(handle);
        _toSend.Add(new FdToSend(handle, FdKind.File));
    }

    public IReadOnlyList<FdToSend> ToSend() => _toSend;

    public async ValueTask DisposeAsync()
    {
        foreach (Socket socket in _sockets)
        {
            try
            {
                socket.Shutdown(SocketShutdown.Both);
            }
            catch (SocketException)
            {
            }
            socket.Dispose();
        }
        foreach (SafeFileHandle file in _files)
        {
            file.Dispose();
        }
        foreach (NbdGuard guard in _guards)
        {
            await guard.DisposeAsync();
        }
    }
}
