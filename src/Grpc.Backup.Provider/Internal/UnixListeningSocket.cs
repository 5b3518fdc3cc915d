using System.Net.Sockets;

namespace Grpc.Backup.Provider.Internal;

/// <summary>
/// Binds a listening Unix socket whose mode is set before <c>listen()</c>, so there is no moment in which a client
/// could connect through a looser mode than the one configured.
/// </summary>
internal static class UnixListeningSocket
{
    public static Socket Bind(string path, SocketType type, UnixFileMode mode, int backlog = 128)
    {
        RemoveStaleSocket(path, type);
        string? directory = Path.GetDirectoryName(path);
        if (directory is not null && !Directory.Exists(directory))
        {
            throw new DirectoryNotFoundException($"the directory of socket {path} does not exist");
        }
        var socket = new Socket(AddressFamily.Unix, type, ProtocolType.Unspecified);
        try
        {
            socket.Bind(new UnixDomainSocketEndPoint(path));
            File.SetUnixFileMode(path, mode);
            socket.Listen(backlog);
            return socket;
        }
        catch
        {
            socket.Dispose();
            TryDelete(path);
            throw;
        }
    }

    public static void TryDelete(string path)
    {
        try
        {
            if (IsSocket(path))
            {
                File.Delete(path);
            }
        }
        catch (IOException)
        {
            // Best effort at shutdown: a leftover socket file is removed at the next start.
        }
        catch (UnauthorizedAccessException)
        {
        }
    }

    private static void RemoveStaleSocket(string path, SocketType type)
    {
        if (!File.Exists(path) && !Directory.Exists(path))
        {
            return;
        }
        if (!IsSocket(path))
        {
            throw new IOException($"{path} exists and is not a socket; refusing to replace it");
        }
        // A socket file someone still listens on belongs to a running provider: never steal it.
        using var probe = new Socket(AddressFamily.Unix, type, ProtocolType.Unspecified);
        try
        {
            probe.Connect(new UnixDomainSocketEndPoint(path));
            throw new IOException($"another process is listening on {path}");
        }
        catch (SocketException e) when (e.SocketErrorCode == SocketError.ConnectionRefused)
        {
            File.Delete(path);
        }
    }

    private static bool IsSocket(string path) => Interop.FileType.IsSocket(path);
}
