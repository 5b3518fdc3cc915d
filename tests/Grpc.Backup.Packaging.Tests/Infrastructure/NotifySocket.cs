using System.Net.Sockets;
using System.Text;

namespace Grpc.Backup.Packaging.Tests.Infrastructure;

/// <summary>
/// The test's stand-in for systemd's notification socket (<c>NOTIFY_SOCKET</c>, sd_notify(3)): a datagram socket anyone
/// may send to, as /run/systemd/notify is, since the service may run as another user.
/// </summary>
internal sealed class NotifySocket : IDisposable
{
    private readonly Socket _socket = new(AddressFamily.Unix, SocketType.Dgram, ProtocolType.Unspecified);

    public NotifySocket(string path)
    {
        Path = path;
        _socket.Bind(new UnixDomainSocketEndPoint(path));
        File.SetUnixFileMode(path, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead | UnixFileMode.GroupWrite
            | UnixFileMode.OtherRead | UnixFileMode.OtherWrite);
    }

    public string Path { get; }

    /// <summary>Waits for a notification carrying READY=1; <paramref name="diagnostics"/> explains a timeout.</summary>
    public async Task WaitForReadyAsync(TimeSpan timeout, Func<string> diagnostics)
    {
        var buffer = new byte[4096];
        using var cancel = new CancellationTokenSource(timeout);
        try
        {
            while (true)
            {
                int length = await _socket.ReceiveAsync(buffer, SocketFlags.None, cancel.Token);
                if (Encoding.UTF8.GetString(buffer, 0, length).Split('\n').Contains("READY=1"))
                {
                    return;
                }
            }
        }
        catch (OperationCanceledException)
        {
            throw new TimeoutException($"no READY=1 within {timeout}:\n{diagnostics()}");
        }
    }

    public void Dispose() => _socket.Dispose();
}
