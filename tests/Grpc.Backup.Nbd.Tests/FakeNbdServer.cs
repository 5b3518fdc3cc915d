using System.Buffers.Binary;
using System.Net.Sockets;
using System.Text;

namespace Grpc.Backup.Nbd.Tests;

/// <summary>
/// A scripted in-process NBD server on a Unix socket for feeding the client hostile input.
/// Wire constants are spelled out here independently of the library, so the tests check the
/// client against the specification and not against itself.
/// </summary>
internal sealed class FakeNbdServer : IAsyncDisposable
{
    public const ushort CmdRead = 0;
    public const ushort CmdWrite = 1;
    public const ushort CmdBlockStatus = 7;
    public const ushort ReplyNone = 0;
    public const ushort ReplyOffsetData = 1;
    public const ushort ReplyOffsetHole = 2;
    public const ushort ReplyBlockStatus = 5;
    public const ushort ReplyError = 0x8001;
    public const ushort ReplyErrorOffset = 0x8002;
    public const ushort FlagDone = 1;

    /// <summary>HAS_FLAGS | SEND_FLUSH | SEND_TRIM | SEND_WRITE_ZEROES.</summary>
    public const ushort DefaultTransmissionFlags = 0x0001 | 0x0004 | 0x0020 | 0x0040;

    private readonly TestDirectory _directory = new();
    private readonly Socket _listener = new(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
    private readonly CancellationTokenSource _stop = new();
    private readonly Task _serving;
    private Socket? _connection;

    public FakeNbdServer(Func<FakeNbdServer, Task> script)
    {
        SocketPath = _directory.File("fake.sock");
        _listener.Bind(new UnixDomainSocketEndPoint(SocketPath));
        _listener.Listen(1);
        _serving = ServeAsync(script);
    }

    public string SocketPath { get; }

    /// <summary>The script's outcome; a script that throws surfaces here.</summary>
    public Task Serving => _serving;

    private Socket Connection => _connection ?? throw new InvalidOperationException("No client connected.");

    private async Task ServeAsync(Func<FakeNbdServer, Task> script)
    {
        _connection = await _listener.AcceptAsync(_stop.Token);
        await script(this);

        // Keep the connection open (like a stalled server) until the test is done.
        await Task.Delay(Timeout.Infinite, _stop.Token).ContinueWith(_ => { }, TaskScheduler.Default);
    }

    public async Task SendAsync(byte[] data) => await Connection.SendAsync(data, SocketFlags.None, _stop.Token);

    public async Task<byte[]> ReceiveAsync(int count)
    {
        var buffer = new byte[count];
        var done = 0;
        while (done < count)
        {
            var received = await Connection.ReceiveAsync(buffer.AsMemory(done), SocketFlags.None, _stop.Token);
            if (received == 0)
            {
                throw new EndOfStreamException("Client closed the connection.");
            }

            done += received;
        }

        return buffer;
    }

    public void Close() => Connection.Shutdown(SocketShutdown.Both);

    /// <summary>NBDMAGIC, IHAVEOPT, handshake flags; then reads the client flags.</summary>
    public async Task SendGreetingAsync(ulong initMagic = 0x4e42444d41474943, ulong optionMagic = 0x49484156454F5054, ushort handshakeFlags = 3)
    {
        await SendAsync(new Writer().U64(initMagic).U64(optionMagic).U16(handshakeFlags).ToArray());
        await ReceiveAsync(4);
    }

    public async Task<(uint Option, byte[] Data)> ReadOptionAsync()
    {
        var header = await ReceiveAsync(16);
        var length = BinaryPrimitives.ReadUInt32BigEndian(header.AsSpan(12));
        var data = await ReceiveAsync((int)length);
        return (BinaryPrimitives.ReadUInt32BigEndian(header.AsSpan(8)), data);
    }

    public Task SendOptionReplyAsync(uint option, uint type, byte[] data, uint? lengthOverride = null, ulong magic = 0x3e889045565a9) =>
        SendAsync(new Writer().U64(magic).U32(option).U32(type).U32(lengthOverride ?? (uint)data.Length).Bytes(data).ToArray());

    /// <summary>
    /// A well-behaved handshake: accepts structured replies, answers SET_META_CONTEXT with
    /// <paramref name="contexts"/>, and completes GO with the given export size and flags.
    /// </summary>
    public async Task HandshakeAsync(ulong size, ushort flags = DefaultTransmissionFlags, (uint Id, string Name)[]? contexts = null, byte[]? blockSizeInfo = null)
    {
        await SendGreetingAsync();
        while (true)
        {
            var (option, _) = await ReadOptionAsync();
            switch (option)
            {
                case 8: // NBD_OPT_STRUCTURED_REPLY
                    await SendOptionReplyAsync(option, 1, []);
                    break;
                case 10: // NBD_OPT_SET_META_CONTEXT
                    foreach (var (id, name) in contexts ?? [])
                    {
                        await SendOptionReplyAsync(option, 4, new Writer().U32(id).Bytes(Encoding.UTF8.GetBytes(name)).ToArray());
                    }

                    await SendOptionReplyAsync(option, 1, []);
                    break;
                case 7: // NBD_OPT_GO
                    await SendOptionReplyAsync(option, 3, new Writer().U16(0).U64(size).U16(flags).ToArray());
                    if (blockSizeInfo is not null)
                    {
                        await SendOptionReplyAsync(option, 3, blockSizeInfo);
                    }

                    await SendOptionReplyAsync(option, 1, []);
                    return;
                default:
                    await SendOptionReplyAsync(option, 0x80000001, []);
                    break;
            }
        }
    }

    public async Task<FakeRequest> ReadRequestAsync()
    {
        var header = await ReceiveAsync(28);
        var request = new FakeRequest(
            BinaryPrimitives.ReadUInt32BigEndian(header),
            BinaryPrimitives.ReadUInt16BigEndian(header.AsSpan(4)),
            BinaryPrimitives.ReadUInt16BigEndian(header.AsSpan(6)),
            BinaryPrimitives.ReadUInt64BigEndian(header.AsSpan(8)),
            BinaryPrimitives.ReadUInt64BigEndian(header.AsSpan(16)),
            BinaryPrimitives.ReadUInt32BigEndian(header.AsSpan(24)));
        if (request.Type == CmdWrite)
        {
            await ReceiveAsync((int)request.Length);
        }

        return request;
    }

    public Task SendChunkAsync(ulong cookie, ushort type, byte[] payload, ushort flags = FlagDone, uint? lengthOverride = null, uint magic = 0x668e33ef) =>
        SendAsync(new Writer().U32(magic).U16(flags).U16(type).U64(cookie).U32(lengthOverride ?? (uint)payload.Length).Bytes(payload).ToArray());

    public Task SendSimpleReplyAsync(ulong cookie, uint error, byte[]? data = null) =>
        SendAsync(new Writer().U32(0x67446698).U32(error).U64(cookie).Bytes(data ?? []).ToArray());

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync();
        _connection?.Dispose();
        _listener.Dispose();
        try
        {
            await _serving.WaitAsync(TimeSpan.FromSeconds(5));
        }
        catch (Exception ex) when (ex is OperationCanceledException or SocketException or IOException or EndOfStreamException or ObjectDisposedException)
        {
            // The script was cut short by the client going away; that is the point of most tests.
        }
        finally
        {
            // Clean up even when the script's own assertions failed (that failure still propagates).
            _stop.Dispose();
            _directory.Dispose();
        }
    }

    /// <summary>Big-endian message builder.</summary>
    public sealed class Writer
    {
        private readonly List<byte> _bytes = [];

        public Writer U16(ushort value) => Bytes([(byte)(value >> 8), (byte)value]);

        public Writer U32(uint value) => U16((ushort)(value >> 16)).U16((ushort)value);

        public Writer U64(ulong value) => U32((uint)(value >> 32)).U32((uint)value);

        public Writer Bytes(byte[] data)
        {
            _bytes.AddRange(data);
            return this;
        }

        public byte[] ToArray() => [.. _bytes];
    }
}
