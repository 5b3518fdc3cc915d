using System.Net.Sockets;
using System.Text;
using System.Text.Json.Nodes;

namespace Grpc.Backup.Qemu.Tests.Infrastructure;

/// <summary>
/// An in-test QMP "server" on a Unix socket whose every byte the test controls, for behaviour real
/// QEMU never shows: garbage, over-long lines, out-of-order replies, silence.
/// </summary>
public sealed class FakeQmpPeer : IAsyncDisposable
{
    public const string Greeting = """{"QMP": {"version": {"qemu": {"micro": 3, "minor": 2, "major": 9}, "package": "fake"}, "capabilities": ["oob"]}}""";

    private readonly string _directory;
    private readonly Socket _listener;
    private readonly List<Socket> _accepted = [];
    private readonly List<QmpClient> _clients = [];

    public FakeQmpPeer()
    {
        _directory = Directory.CreateTempSubdirectory("qmp-fake-").FullName;
        SocketPath = Path.Combine(_directory, "qmp.sock");
        _listener = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        _listener.Bind(new UnixDomainSocketEndPoint(SocketPath));
        _listener.Listen();
    }

    public string SocketPath { get; }

    public async Task<Connection> AcceptAsync()
    {
        Socket socket = await _listener.AcceptAsync().WaitAsync(TimeSpan.FromSeconds(10));
        lock (_accepted)
        {
            _accepted.Add(socket);
        }

        return new Connection(socket);
    }

    /// <summary>
    /// Connects a real client and plays the server side of the handshake. The client is disposed
    /// together with the peer.
    /// </summary>
    public async Task<(QmpClient Client, Connection Peer)> ConnectClientAsync(QmpClientOptions? options = null)
    {
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        Task<QmpClient> connect = QmpClient.ConnectAsync(SocketPath, options, timeout.Token);
        Connection peer = await AcceptAsync();
        await peer.SendLineAsync(Greeting);
        JsonObject request = await peer.ReadRequestAsync();
        Assert.Equal("qmp_capabilities", (string?)request["execute"]);
        await peer.ReplyAsync(request, new JsonObject());
        QmpClient client = await connect;
        _clients.Add(client);
        return (client, peer);
    }

    public async ValueTask DisposeAsync()
    {
        foreach (QmpClient client in _clients)
        {
            await client.DisposeAsync();
        }

        lock (_accepted)
        {
            foreach (Socket socket in _accepted)
            {
                socket.Dispose();
            }
        }

        _listener.Dispose();
        Directory.Delete(_directory, recursive: true);
    }

    /// <summary>The server end of one accepted connection.</summary>
    public sealed class Connection
    {
        private readonly Socket _socket;
        private readonly List<byte> _received = [];

        internal Connection(Socket socket) => _socket = socket;

        public void Close() => _socket.Dispose();

        public Task SendLineAsync(string json) => SendAsync(Encoding.UTF8.GetBytes(json + "\r\n"));

        public async Task SendAsync(ReadOnlyMemory<byte> bytes)
        {
            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(10));
            await _socket.SendAsync(bytes, SocketFlags.None, timeout.Token);
        }

        public Task ReplyAsync(JsonObject request, JsonNode result)
            => SendLineAsync(new JsonObject { ["return"] = result, ["id"] = request["id"]?.DeepClone() }.ToJsonString());

        /// <summary>Reads the next request line sent by the client.</summary>
        public async Task<JsonObject> ReadRequestAsync()
        {
            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(10));
            byte[] chunk = new byte[4096];
            while (true)
            {
                int lineFeed = _received.IndexOf((byte)'\n');
                if (lineFeed >= 0)
                {
                    byte[] line = [.. _received.GetRange(0, lineFeed)];
                    _received.RemoveRange(0, lineFeed + 1);
                    return JsonNode.Parse(line)!.AsObject();
                }

                int read = await _socket.ReceiveAsync(chunk, SocketFlags.None, timeout.Token);
                if (read == 0)
                {
                    throw new EndOfStreamException("The client closed the connection.");
                }

                _received.AddRange(chunk.AsSpan(0, read));
            }
        }

        /// <summary>True once the client has closed its end (reads return EOF or reset).</summary>
        public async Task<bool> WaitForClientCloseAsync(TimeSpan timeout)
        {
            using var cts = new CancellationTokenSource(timeout);
            byte[] chunk = new byte[64 * 1024];
            try
            {
                while (await _socket.ReceiveAsync(chunk, SocketFlags.None, cts.Token) > 0)
                {
                }

                return true;
            }
            catch (SocketException)
            {
                return true; // reset: closed with unread data
            }
            catch (OperationCanceledException)
            {
                return false;
            }
        }
    }
}
