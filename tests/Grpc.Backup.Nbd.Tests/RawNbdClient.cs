using System.Buffers.Binary;
using System.Net.Sockets;
using System.Text;

namespace Grpc.Backup.Nbd.Tests;

/// <summary>
/// A deliberately careless NBD client for attacking a server: it sends whatever options and commands it is told to,
/// with any alignment, length or flag, and parses only simple replies (it never asks for structured ones).
/// </summary>
internal sealed class RawNbdClient : IDisposable
{
    public const uint OptExportName = 1;
    public const uint OptAbort = 2;
    public const uint OptList = 3;
    public const uint OptStartTls = 5;
    public const uint OptInfo = 6;
    public const uint OptGo = 7;
    public const uint OptStructuredReply = 8;
    public const uint OptListMetaContext = 9;
    public const uint OptSetMetaContext = 10;
    public const uint RepAck = 1;
    public const uint RepInfo = 3;
    public const uint RepMetaContext = 4;
    public const uint ErrUnsupported = 0x8000_0001;
    public const uint ErrPolicy = 0x8000_0002;
    public const uint ErrInvalid = 0x8000_0003;
    public const uint ErrUnknown = 0x8000_0006;
    public const uint ErrTooBig = 0x8000_0009;

    public const ushort CmdRead = 0;
    public const ushort CmdWrite = 1;
    public const ushort CmdDisconnect = 2;
    public const ushort CmdFlush = 3;
    public const ushort CmdTrim = 4;
    public const ushort CmdCache = 5;
    public const ushort CmdWriteZeroes = 6;
    public const ushort CmdBlockStatus = 7;

    private readonly Socket _socket;

    public RawNbdClient(Socket socket) => _socket = socket;

    public static async Task<RawNbdClient> GreetAsync(Socket socket)
    {
        var client = new RawNbdClient(socket);
        var greeting = await client.ReceiveExactAsync(18);
        Assert.Equal(0x4e42444d41474943UL, BinaryPrimitives.ReadUInt64BigEndian(greeting));
        await client.SendAsync(BigEndian(4, 3)); // fixed newstyle, no zeroes
        return client;
    }

    /// <summary>Sends one option and collects its replies up to the final one (ACK or an error).</summary>
    public async Task<List<(uint Type, byte[] Data)>> OptionAsync(uint option, byte[] data)
    {
        var message = new byte[16 + data.Length];
        BinaryPrimitives.WriteUInt64BigEndian(message, 0x49484156454F5054);
        BinaryPrimitives.WriteUInt32BigEndian(message.AsSpan(8), option);
        BinaryPrimitives.WriteUInt32BigEndian(message.AsSpan(12), (uint)data.Length);
        data.CopyTo(message, 16);
        await SendAsync(message);
        var replies = new List<(uint, byte[])>();
        while (true)
        {
            var header = await ReceiveExactAsync(20);
            Assert.Equal(0x0003e889045565a9UL, BinaryPrimitives.ReadUInt64BigEndian(header));
            Assert.Equal(option, BinaryPrimitives.ReadUInt32BigEndian(header.AsSpan(8)));
            var type = BinaryPrimitives.ReadUInt32BigEndian(header.AsSpan(12));
            var body = await ReceiveExactAsync((int)BinaryPrimitives.ReadUInt32BigEndian(header.AsSpan(16)));
            replies.Add((type, body));
            if (type == RepAck || (type & 0x8000_0000) != 0)
            {
                return replies;
            }
        }
    }

    /// <summary>The payload of NBD_OPT_GO / NBD_OPT_INFO for <paramref name="name"/>, asking for nothing extra.</summary>
    public static byte[] InfoRequest(string name)
    {
        var bytes = Encoding.UTF8.GetBytes(name);
        var data = new byte[4 + bytes.Length + 2];
        BinaryPrimitives.WriteUInt32BigEndian(data, (uint)bytes.Length);
        bytes.CopyTo(data, 4);
        return data;
    }

    /// <summary>The payload of a meta context option: export name and queries.</summary>
    public static byte[] MetaContextRequest(string name, params string[] queries)
    {
        var buffer = new MemoryStream();
        void Write(string s)
        {
            var b = Encoding.UTF8.GetBytes(s);
            buffer.Write(BigEndian(4, (uint)b.Length));
            buffer.Write(b);
        }

        Write(name);
        buffer.Write(BigEndian(4, (uint)queries.Length));
        foreach (var q in queries)
        {
            Write(q);
        }

        return buffer.ToArray();
    }

    public Task SendRequestAsync(ushort command, ulong cookie, ulong offset, uint length, ushort flags = 0, byte[]? payload = null)
    {
        var request = new byte[28 + (payload?.Length ?? 0)];
        BinaryPrimitives.WriteUInt32BigEndian(request, 0x25609513);
        BinaryPrimitives.WriteUInt16BigEndian(request.AsSpan(4), flags);
        BinaryPrimitives.WriteUInt16BigEndian(request.AsSpan(6), command);
        BinaryPrimitives.WriteUInt64BigEndian(request.AsSpan(8), cookie);
        BinaryPrimitives.WriteUInt64BigEndian(request.AsSpan(16), offset);
        BinaryPrimitives.WriteUInt32BigEndian(request.AsSpan(24), length);
        payload?.CopyTo(request, 28);
        return SendAsync(request);
    }

    /// <summary>A simple reply: its error and cookie, then <paramref name="dataLength"/> bytes of data when it succeeded.</summary>
    public async Task<(uint Error, ulong Cookie, byte[] Data)> ReceiveSimpleReplyAsync(int dataLength = 0)
    {
        var header = await ReceiveExactAsync(16);
        Assert.Equal(0x67446698u, BinaryPrimitives.ReadUInt32BigEndian(header));
        var error = BinaryPrimitives.ReadUInt32BigEndian(header.AsSpan(4));
        var cookie = BinaryPrimitives.ReadUInt64BigEndian(header.AsSpan(8));
        var data = error == 0 && dataLength > 0 ? await ReceiveExactAsync(dataLength) : [];
        return (error, cookie, data);
    }

    /// <summary>Whether the peer closed the connection (a receive returns end of stream or fails).</summary>
    public async Task<bool> IsClosedAsync(CancellationToken cancellationToken = default)
    {
        var one = new byte[1];
        try
        {
            return await _socket.ReceiveAsync(one, SocketFlags.None, cancellationToken) == 0;
        }
        catch (SocketException)
        {
            return true;
        }
    }

    public Task SendAsync(byte[] data) => _socket.SendAsync(data, SocketFlags.None).ContinueWith(t => Assert.Equal(data.Length, t.Result), TaskScheduler.Default);

    /// <summary>Sends all of <paramref name="data"/>, however many calls it takes.</summary>
    public async Task SendAllAsync(ReadOnlyMemory<byte> data, CancellationToken cancellationToken)
    {
        while (!data.IsEmpty)
        {
            data = data[await _socket.SendAsync(data, SocketFlags.None, cancellationToken)..];
        }
    }

    /// <summary>Shuts both directions down: the peer sees the connection end even while other copies of the socket live.</summary>
    public void Shutdown()
    {
        try
        {
            _socket.Shutdown(SocketShutdown.Both);
        }
        catch (SocketException)
        {
        }
    }

    public async Task<byte[]> ReceiveExactAsync(int count, CancellationToken cancellationToken = default)
    {
        var buffer = new byte[count];
        var done = 0;
        while (done < count)
        {
            var n = await _socket.ReceiveAsync(buffer.AsMemory(done), SocketFlags.None, cancellationToken);
            if (n == 0)
            {
                throw new IOException($"The server closed the connection after {done} of {count} bytes.");
            }

            done += n;
        }

        return buffer;
    }

    public static byte[] BigEndian(int size, ulong value)
    {
        var bytes = new byte[size];
        if (size == 4)
        {
            BinaryPrimitives.WriteUInt32BigEndian(bytes, (uint)value);
        }
        else
        {
            BinaryPrimitives.WriteUInt64BigEndian(bytes, value);
        }

        return bytes;
    }

    public void Dispose() => _socket.Dispose();
}
