using System.Net.Sockets;
using System.Runtime.InteropServices;
using Grpc.Backup.Transport.Internal;

namespace Grpc.Backup.Transport.Tests.Support;

/// <summary>
/// A sideband client that bypasses the API: reads HELLO itself and sends whatever bytes and
/// fds a test wants, with the library's own sendmsg helper.
/// </summary>
internal sealed class RawSidebandClient : IDisposable
{
    private RawSidebandClient(Socket socket, byte[] hello)
    {
        Socket = socket;
        Hello = hello;
    }

    public Socket Socket { get; }

    public byte[] Hello { get; }

    public FdToken ChannelId => FdToken.FromBytes(Hello.AsSpan(8, 16));

    public static RawSidebandClient Connect(string path)
    {
        var socket = new Socket(AddressFamily.Unix, SocketType.Seqpacket, ProtocolType.Unspecified);
        socket.Connect(new UnixDomainSocketEndPoint(path));
        socket.ReceiveTimeout = 5000;
        var buffer = new byte[256];
        int received = socket.Receive(buffer);
        return new RawSidebandClient(socket, buffer[..received]);
    }

    public void Send(byte[] packet, params SafeHandle[] fds)
    {
        int[] numbers = [.. fds.Select(f => (int)f.DangerousGetHandle())];
        int errno = SeqpacketIo.TrySend((int)Socket.Handle, packet, numbers);
        Assert.True(errno == 0, $"sendmsg failed with errno {errno}");
    }

    /// <summary>True when the other side closed the connection within 5 s.</summary>
    public bool ReceivesEndOfStream()
    {
        var buffer = new byte[256];
        try
        {
            return Socket.Receive(buffer) == 0;
        }
        catch (SocketException e) when (e.SocketErrorCode == SocketError.TimedOut)
        {
            return false;
        }
    }

    public void Dispose() => Socket.Dispose();
}
