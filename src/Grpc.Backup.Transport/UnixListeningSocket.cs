using System.Net.Sockets;
using Grpc.Backup.Transport.Internal;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Grpc.Backup.Transport;

/// <summary>
/// A listening Unix socket bound with the protocol's rules: a stale socket file left by a crashed process is replaced,
/// anything else at the path (a regular file, a live listener) is never touched, and the file's mode is set between
/// <c>bind()</c> and <c>listen()</c>, so there is no moment in which a client could connect through a looser mode.
/// Used for both provider sockets: gRPC (stream) and the fd sideband (seqpacket).
/// </summary>
public sealed class UnixListeningSocket
{
    private const int DefaultBacklog = 128;

    private readonly SocketFile _file;

    private UnixListeningSocket(Socket socket, SocketFile file)
    {
        Socket = socket;
        _file = file;
    }

    /// <summary>The listening socket. Its owner disposes it.</summary>
    public Socket Socket { get; }

    /// <summary>The socket file's path.</summary>
    public string Path => _file.Path;

    /// <summary>Binds and listens at <paramref name="path"/> with <paramref name="mode"/>.</summary>
    /// <exception cref="IOException">Something other than a stale socket is at the path.</exception>
    public static UnixListeningSocket Bind(string path, SocketType type, UnixFileMode mode, ILogger? logger = null)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        SocketFile.PrepareForBind(path, type, logger ?? NullLogger.Instance);
        var socket = new Socket(AddressFamily.Unix, type, ProtocolType.Unspecified);
        SocketFile? file = null;
        try
        {
            // Until listen() nobody can connect (ECONNREFUSED), so the file's initial umask-derived mode is never
            // usable; chmod narrows it before listen.
            socket.Bind(new UnixDomainSocketEndPoint(path));
            file = SocketFile.AfterBind(path);
            File.SetUnixFileMode(path, mode);
            socket.Listen(DefaultBacklog);
            return new UnixListeningSocket(socket, file);
        }
        catch
        {
            socket.Dispose();
            file?.DeleteIfOurs();
            throw;
        }
    }

    /// <summary>Removes the socket file if it is still the one this socket created (an administrator may have replaced it).</summary>
    public void DeleteFileIfOurs() => _file.DeleteIfOurs();
}
