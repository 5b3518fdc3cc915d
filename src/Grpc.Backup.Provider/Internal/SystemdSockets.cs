using System.Globalization;
using System.Net.Sockets;

namespace Grpc.Backup.Provider.Internal;

/// <summary>
/// The listening sockets systemd passed by socket activation (sd_listen_fds(3): <c>LISTEN_PID</c>, <c>LISTEN_FDS</c>,
/// fds from 3). Kestrel's own UseSystemd would treat every passed fd as HTTP; the provider needs the seqpacket one for
/// the fd sideband, so it sorts them by SO_TYPE itself.
/// </summary>
internal sealed class SystemdSockets
{
    private const int FirstFd = 3;

    private SystemdSockets(IReadOnlyList<Socket> stream, IReadOnlyList<Socket> seqpacket)
    {
        Stream = stream;
        Seqpacket = seqpacket;
    }

    /// <summary>Listening stream sockets: gRPC.</summary>
    public IReadOnlyList<Socket> Stream { get; }

    /// <summary>Listening seqpacket sockets: the fd sideband.</summary>
    public IReadOnlyList<Socket> Seqpacket { get; }

    /// <summary>The passed sockets, or null when this process was not socket-activated.</summary>
    public static SystemdSockets? TakeFromEnvironment()
    {
        string? pidText = Environment.GetEnvironmentVariable("LISTEN_PID");
        string? countText = Environment.GetEnvironmentVariable("LISTEN_FDS");
        if (pidText is null || countText is null)
        {
            return null;
        }
        // The variables are meant for exactly one process; children (borg, qemu-img, a worker) must not see them.
        Environment.SetEnvironmentVariable("LISTEN_PID", null);
        Environment.SetEnvironmentVariable("LISTEN_FDS", null);
        Environment.SetEnvironmentVariable("LISTEN_FDNAMES", null);
        if (!int.TryParse(pidText, NumberStyles.None, CultureInfo.InvariantCulture, out int pid) || pid != Environment.ProcessId)
        {
            return null;
        }
        if (!int.TryParse(countText, NumberStyles.None, CultureInfo.InvariantCulture, out int count) || count is < 1 or > 16)
        {
            throw new InvalidOperationException($"LISTEN_FDS='{countText}' is not a usable socket count");
        }
        var stream = new List<Socket>();
        var seqpacket = new List<Socket>();
        for (int fd = FirstFd; fd < FirstFd + count; fd++)
        {
            var socket = new Socket(new SafeSocketHandle(fd, ownsHandle: true));
            if (socket.AddressFamily != AddressFamily.Unix)
            {
                socket.Dispose();
                throw new InvalidOperationException($"systemd passed fd {fd}, which is not a Unix socket; providers listen on Unix sockets only");
            }
            switch (socket.SocketType)
            {
                case SocketType.Stream:
                    stream.Add(socket);
                    break;
                case SocketType.Seqpacket:
                    seqpacket.Add(socket);
                    break;
                default:
                    socket.Dispose();
                    throw new InvalidOperationException($"systemd passed fd {fd} of socket type {socket.SocketType}; expected stream or seqpacket");
            }
        }
        if (stream.Count != 1 || seqpacket.Count > 1)
        {
            throw new InvalidOperationException(
                $"systemd passed {stream.Count} stream and {seqpacket.Count} seqpacket sockets; expected one stream (gRPC) and at most one seqpacket (fd sideband)");
        }
        return new SystemdSockets(stream, seqpacket);
    }
}
