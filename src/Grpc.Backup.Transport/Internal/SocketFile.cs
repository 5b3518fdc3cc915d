using System.Net.Sockets;
using System.Runtime.InteropServices;
using Grpc.Backup.Transport.Internal.Interop;
using Microsoft.Extensions.Logging;

namespace Grpc.Backup.Transport.Internal;

/// <summary>
/// The socket file a listener binds: cleared of a stale predecessor before bind, and removed
/// on dispose only if it is still the very file this listener created.
/// </summary>
internal sealed class SocketFile
{
    private readonly FileIdentity _identity;

    private SocketFile(string path, FileIdentity identity)
    {
        Path = path;
        _identity = identity;
    }

    public string Path { get; }

    /// <summary>
    /// Makes room for bind: nothing there is fine; a socket nobody listens on (left by a crashed
    /// process) is removed; anything else, or a live socket, is an error: never replace what
    /// might be someone else's file or a running provider.
    /// </summary>
    public static void PrepareForBind(string path, SocketType type, ILogger logger)
    {
        if (!FileIdentity.TryGet(path, out FileIdentity existing, out int errno))
        {
            if (errno == Libc.Enoent)
            {
                return;
            }

            throw new IOException($"Cannot examine {path}: {Marshal.GetPInvokeErrorMessage(errno)}.");
        }

        if (!existing.IsSocket)
        {
            throw new IOException($"{path} exists and is not a socket; refusing to replace it.");
        }

        // Non-blocking: a live listener with a full backlog must not hang Bind; it answers
        // EAGAIN, which counts as "somebody is there".
        using (var probe = new Socket(AddressFamily.Unix, type, ProtocolType.Unspecified) { Blocking = false })
        {
            try
            {
                probe.Connect(new UnixDomainSocketEndPoint(path));
            }
            catch (SocketException e) when (e.SocketErrorCode == SocketError.ConnectionRefused)
            {
                // Nobody listens: stale.
                File.Delete(path);
                Log.StaleSocketRemoved(logger, path);
                return;
            }
            catch (SocketException e)
            {
                throw new IOException($"{path} is a socket that cannot be checked for staleness ({e.SocketErrorCode}); refusing to replace it.", e);
            }
        }

        throw new IOException($"{path} is a socket somebody is listening on; refusing to replace it.");
    }

    /// <summary>Records the identity of the file bind just created.</summary>
    public static SocketFile AfterBind(string path)
    {
        if (!FileIdentity.TryGet(path, out FileIdentity identity, out int errno))
        {
            throw new IOException($"Cannot examine the socket {path} just bound: {Marshal.GetPInvokeErrorMessage(errno)}.");
        }

        return new SocketFile(path, identity);
    }

    /// <summary>Removes the file if it is still ours (an administrator may have replaced it).</summary>
    public void DeleteIfOurs()
    {
        if (FileIdentity.TryGet(Path, out FileIdentity current, out _) && current == _identity)
        {
            try
            {
                File.Delete(Path);
            }
            catch (IOException)
            {
                // Gone or not removable: nothing more to do on shutdown.
            }
            catch (UnauthorizedAccessException)
            {
                // Same.
            }
        }
    }
}
