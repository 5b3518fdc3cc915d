using System.Net.Sockets;
using Grpc.Backup.Transport;
using Microsoft.Win32.SafeHandles;

namespace Grpc.Backup.Orchestrator.Internal;

/// <summary>
/// The host's copies of what it passes for one BackupVm: connected NBD sockets or opened snapshot files. At disposal
/// the sockets are shut down (shutdown acts on the connection, not the fd, so a provider's copies go dead too and QEMU
/// sees its NBD clients end now, even if a provider or a transfer in flight still holds them) and every fd is closed.
/// A file needs no such step: teardown deletes its FUSE export, which unmounts it under any fd still open.
/// </summary>
internal sealed class PassedVolumeSources : IAsyncDisposable
{
    private readonly List<Socket> _sockets = [];
    private readonly List<SafeFileHandle> _files = [];
    private readonly List<FdToSend> _toSend = [];

    public async Task ConnectNbdAsync(string socketPath, CancellationToken cancellationToken)
    {
        var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        _sockets.Add(socket);
        await socket.ConnectAsync(new UnixDomainSocketEndPoint(socketPath), cancellationToken);
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

    public ValueTask DisposeAsync()
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
        return ValueTask.CompletedTask;
    }
}
