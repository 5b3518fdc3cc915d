using System.IO.Pipes;
using System.Net.Sockets;
using System.Text;

namespace Grpc.Backup.Transport.Tests.Support;

/// <summary>
/// An fd of one kind to send, together with a check that the received copy really is usable:
/// read the file, read what is written into the pipe, talk through the socket.
/// </summary>
internal sealed class PassableFd : IDisposable
{
    private readonly Func<PassedFd, Task> _verify;
    private readonly IDisposable[] _resources;

    private PassableFd(FdToSend toSend, Func<PassedFd, Task> verify, params IDisposable[] resources)
    {
        ToSend = toSend;
        _verify = verify;
        _resources = resources;
    }

    public FdToSend ToSend { get; }

    public static PassableFd Create(FdKind kind, TempDirectory directory, string name) => kind switch
    {
        FdKind.File => File(directory, name),
        FdKind.Pipe => Pipe(name),
        FdKind.NbdSocket => Socket(name),
        _ => throw new ArgumentOutOfRangeException(nameof(kind)),
    };

    public static PassableFd File(TempDirectory directory, string name)
    {
        string content = $"content of {name}";
        string path = directory.CreateFile(name, content);
        var handle = System.IO.File.OpenHandle(path, FileMode.Open, FileAccess.Read);
        return new PassableFd(new FdToSend(handle, FdKind.File), passed =>
        {
            using var received = passed.TakeFileHandle();
            var buffer = new byte[256];
            int read = RandomAccess.Read(received, buffer, 0);
            Assert.Equal(content, Encoding.UTF8.GetString(buffer, 0, read));
            return Task.CompletedTask;
        }, handle);
    }

    public static PassableFd Pipe(string name)
    {
        // We send the read end and keep writing into the write end.
        var writer = new AnonymousPipeServerStream(PipeDirection.Out);
        return new PassableFd(new FdToSend(writer.ClientSafePipeHandle, FdKind.Pipe), async passed =>
        {
            writer.DisposeLocalCopyOfClientHandle();
            byte[] message = Encoding.UTF8.GetBytes($"through the pipe {name}");
            await writer.WriteAsync(message);
            await writer.DisposeAsync();
            await using var reader = new FileStream(passed.TakeFileHandle(), FileAccess.Read, bufferSize: 1);
            using var text = new StreamReader(reader);
            Assert.Equal($"through the pipe {name}", await text.ReadToEndAsync());
        }, writer);
    }

    public static PassableFd Socket(string name)
    {
        (Socket near, Socket far) = TestInterop.StreamSocketPair();
        return new PassableFd(new FdToSend(near.SafeHandle, FdKind.NbdSocket), async passed =>
        {
            using Socket received = passed.TakeSocket();
            Assert.Equal(SocketType.Stream, received.SocketType);
            await received.SendAsync(Encoding.UTF8.GetBytes($"ping {name}"));
            Assert.Equal($"ping {name}", await ReceiveText(far));
            await far.SendAsync(Encoding.UTF8.GetBytes($"pong {name}"));
            Assert.Equal($"pong {name}", await ReceiveText(received));
        }, near, far);
    }

    public Task VerifyAsync(PassedFd passed) => _verify(passed);

    public void Dispose()
    {
        foreach (IDisposable resource in _resources)
        {
            resource.Dispose();
        }
    }

    private static async Task<string> ReceiveText(Socket socket)
    {
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(5));
        var buffer = new byte[256];
        int received = await socket.ReceiveAsync(buffer, SocketFlags.None, timeout.Token);
        return Encoding.UTF8.GetString(buffer, 0, received);
    }
}
