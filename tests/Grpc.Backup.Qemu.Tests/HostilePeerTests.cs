using System.Diagnostics;
using System.Text;
using System.Text.Json.Nodes;
using Grpc.Backup.Qemu.Tests.Infrastructure;

namespace Grpc.Backup.Qemu.Tests;

/// <summary>A peer that is broken or hostile gets a clear error and a closed socket, never a hang.</summary>
public sealed class HostilePeerTests
{
    [Theory(Timeout = TestTimeouts.Test)]
    [InlineData("this is not json", "malformed JSON")]
    [InlineData("""{"return": {}}""", "greeting")]
    [InlineData("""[1, 2, 3]""", "object")]
    [InlineData("""{"QMP": {"version": {"qemu": {"major": "seven"}}}}""", "greeting")]
    public async Task Bad_greeting_fails_the_connect_with_a_protocol_error(string greeting, string expected)
    {
        await using var peer = new FakeQmpPeer();
        Task<QmpClient> connect = QmpClient.ConnectAsync(peer.SocketPath);
        FakeQmpPeer.Connection connection = await peer.AcceptAsync();

        await connection.SendLineAsync(greeting);

        var ex = await Assert.ThrowsAsync<QmpConnectionClosedException>(() => connect.WaitAsync(TestTimeouts.Prompt));
        var protocol = Assert.IsType<QmpProtocolException>(ex.InnerException);
        Assert.Contains(expected, protocol.Message, StringComparison.Ordinal);
        Assert.True(await connection.WaitForClientCloseAsync(TestTimeouts.Prompt));
    }

    [Fact(Timeout = TestTimeouts.Test)]
    public async Task Peer_closing_before_the_greeting_fails_the_connect()
    {
        await using var peer = new FakeQmpPeer();
        Task<QmpClient> connect = QmpClient.ConnectAsync(peer.SocketPath);
        FakeQmpPeer.Connection connection = await peer.AcceptAsync();

        connection.Close();

        var ex = await Assert.ThrowsAsync<QmpConnectionClosedException>(() => connect.WaitAsync(TestTimeouts.Prompt));
        Assert.Contains("greeting", ex.Message, StringComparison.Ordinal);
    }

    [Fact(Timeout = TestTimeouts.Test)]
    public async Task Silent_peer_lets_the_connect_be_cancelled()
    {
        await using var peer = new FakeQmpPeer();
        using var cts = new CancellationTokenSource();
        Task<QmpClient> connect = QmpClient.ConnectAsync(peer.SocketPath, cts.Token);
        FakeQmpPeer.Connection connection = await peer.AcceptAsync();
        await Task.Delay(200);
        Assert.False(connect.IsCompleted);

        cts.Cancel();

        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => connect.WaitAsync(TestTimeouts.Prompt));
        Assert.True(await connection.WaitForClientCloseAsync(TestTimeouts.Prompt));
    }

    [Fact(Timeout = TestTimeouts.Test)]
    public async Task Silent_peer_fails_the_connect_after_the_handshake_bound_without_being_cancelled()
    {
        await using var peer = new FakeQmpPeer();
        Task<QmpClient> connect = QmpClient.ConnectAsync(peer.SocketPath,
            new QmpClientOptions { HandshakeTimeout = TimeSpan.FromSeconds(1) }, CancellationToken.None);
        FakeQmpPeer.Connection connection = await peer.AcceptAsync();

        var ex = await Assert.ThrowsAsync<TimeoutException>(() => connect.WaitAsync(TestTimeouts.Prompt));

        Assert.Contains("no greeting and capabilities within 1 s", ex.Message, StringComparison.Ordinal);
        Assert.True(await connection.WaitForClientCloseAsync(TestTimeouts.Prompt));
    }

    [Fact(Timeout = TestTimeouts.Test)]
    public async Task Garbage_after_the_handshake_fails_pending_calls_and_closes_the_connection()
    {
        await using var peer = new FakeQmpPeer();
        (QmpClient client, FakeQmpPeer.Connection connection) = await peer.ConnectClientAsync();
        using QmpEventSubscription subscription = client.SubscribeEvents();

        Task<JsonNode?> pending = client.ExecuteAsync("query-version");
        await connection.ReadRequestAsync();
        await connection.SendLineAsync("""{"return": {}, "id": """); // truncated JSON

        var ex = await Assert.ThrowsAsync<QmpConnectionClosedException>(() => pending.WaitAsync(TestTimeouts.Prompt));
        Assert.IsType<QmpProtocolException>(ex.InnerException);
        Assert.Contains("malformed JSON", ex.Message, StringComparison.Ordinal);
        await Assert.ThrowsAsync<QmpConnectionClosedException>(() => subscription.Reader.Completion.WaitAsync(TestTimeouts.Prompt));
        await Assert.ThrowsAsync<QmpConnectionClosedException>(() => client.ExecuteAsync("query-version").WaitAsync(TestTimeouts.Prompt));
        Assert.True(await connection.WaitForClientCloseAsync(TestTimeouts.Prompt));
    }

    [Theory(Timeout = TestTimeouts.Test)]
    [InlineData("""{"hello": "world"}""", "neither a reply nor an event")]
    [InlineData("""{"return": {}}""", "without a usable id")]
    [InlineData("""{"error": "boom", "id": 2}""", "malformed error reply")]
    [InlineData("""{"event": 42}""", "event without a name")]
    [InlineData("""{"return": {}, "id": 2, "id": 3}""", "malformed JSON")] // duplicate keys
    public async Task Well_formed_json_of_the_wrong_shape_closes_the_connection(string message, string expected)
    {
        await using var peer = new FakeQmpPeer();
        (QmpClient client, FakeQmpPeer.Connection connection) = await peer.ConnectClientAsync();

        Task<JsonNode?> pending = client.ExecuteAsync("query-version");
        Assert.Equal(2, (long)(await connection.ReadRequestAsync())["id"]!); // qmp_capabilities was 1
        await connection.SendLineAsync(message);

        var ex = await Assert.ThrowsAsync<QmpConnectionClosedException>(() => pending.WaitAsync(TestTimeouts.Prompt));
        var protocol = Assert.IsType<QmpProtocolException>(ex.InnerException);
        Assert.Contains(expected, protocol.Message, StringComparison.Ordinal);
    }

    [Fact(Timeout = TestTimeouts.Test)]
    public async Task Line_longer_than_the_default_16_MiB_limit_closes_the_connection()
    {
        await using var peer = new FakeQmpPeer();
        (QmpClient client, FakeQmpPeer.Connection connection) = await peer.ConnectClientAsync();
        Task<JsonNode?> pending = client.ExecuteAsync("query-version");
        await connection.ReadRequestAsync();

        // A string that never ends: the client must stop buffering at the limit, not at EOF.
        byte[] huge = new byte[QmpClientOptions.DefaultMaxMessageBytes + (1024 * 1024)];
        huge.AsSpan().Fill((byte)'a');
        """{"return": {"x": """u8.CopyTo(huge);
        Task send = connection.SendAsync(huge);

        var ex = await Assert.ThrowsAsync<QmpConnectionClosedException>(() => pending.WaitAsync(TestTimeouts.Prompt));
        var protocol = Assert.IsType<QmpProtocolException>(ex.InnerException);
        Assert.Contains(QmpClientOptions.DefaultMaxMessageBytes.ToString(System.Globalization.CultureInfo.InvariantCulture), protocol.Message, StringComparison.Ordinal);
        Assert.True(await connection.WaitForClientCloseAsync(TestTimeouts.Prompt));
        await Assert.ThrowsAnyAsync<Exception>(() => send); // the client hung up mid-send
    }

    [Fact(Timeout = TestTimeouts.Test)]
    public async Task Message_size_limit_is_exact()
    {
        const int limit = 4096;
        await using var peer = new FakeQmpPeer();
        (QmpClient client, FakeQmpPeer.Connection connection) = await peer.ConnectClientAsync(new QmpClientOptions { MaxMessageBytes = limit });

        // Exactly at the limit (the CR counts, the LF does not): accepted.
        Task<JsonNode?> first = client.ExecuteAsync("query-version");
        JsonObject request = await connection.ReadRequestAsync();
        await connection.SendLineAsync(PaddedReply(request["id"]!.ToJsonString(), limit));
        JsonNode? result = await first.WaitAsync(TestTimeouts.Prompt);
        Assert.StartsWith("xxxx", (string?)result!["pad"], StringComparison.Ordinal);

        // One byte more: rejected.
        Task<JsonNode?> second = client.ExecuteAsync("query-version");
        request = await connection.ReadRequestAsync();
        await connection.SendLineAsync(PaddedReply(request["id"]!.ToJsonString(), limit + 1));
        var ex = await Assert.ThrowsAsync<QmpConnectionClosedException>(() => second.WaitAsync(TestTimeouts.Prompt));
        Assert.IsType<QmpProtocolException>(ex.InnerException);
    }

    [Fact(Timeout = TestTimeouts.Test)]
    public async Task Event_burst_never_blocks_replies_and_an_overflowing_subscription_fails_visibly()
    {
        await using var peer = new FakeQmpPeer();
        (QmpClient client, FakeQmpPeer.Connection connection) = await peer.ConnectClientAsync();
        using QmpEventSubscription slow = client.SubscribeEvents(capacity: 2);

        Task<JsonNode?> pending = client.ExecuteAsync("query-status");
        JsonObject request = await connection.ReadRequestAsync();
        var burst = new StringBuilder();
        for (int i = 0; i < 5; i++)
        {
            burst.Append("{\"event\": \"TICK\", \"data\": {\"n\": ").Append(i).Append("}, \"timestamp\": {\"seconds\": 1700000000, \"microseconds\": 5}}\r\n");
        }

        await connection.SendAsync(Encoding.UTF8.GetBytes(burst.ToString()));
        await connection.ReplyAsync(request, new JsonObject { ["status"] = "running" });

        Assert.Equal("running", (string?)(await pending.WaitAsync(TestTimeouts.Prompt))!["status"]);
        var received = new List<QmpEvent>();
        var ex = await Assert.ThrowsAsync<QmpException>(async () =>
        {
            await foreach (QmpEvent e in slow.ReadAllAsync())
            {
                received.Add(e);
            }
        }).WaitAsync(TestTimeouts.Prompt);
        Assert.Contains("fell more than 2 events behind", ex.Message, StringComparison.Ordinal);
        Assert.Equal([0, 1], received.Select(e => (int)e.Data["n"]!));
        Assert.Equal(DateTimeOffset.FromUnixTimeSeconds(1_700_000_000).AddTicks(50), received[0].Timestamp);
        Assert.True(client.IsConnected);
    }

    /// <summary>A reply whose line (with its CR, without its LF) is exactly <paramref name="length"/> bytes.</summary>
    private static string PaddedReply(string id, int length)
    {
        string prefix = "{\"return\": {\"pad\": \"";
        string suffix = "\"}, \"id\": " + id + "}";
        string line = prefix + new string('x', length - 1 - prefix.Length - suffix.Length) + suffix;
        Assert.Equal(length - 1, Encoding.UTF8.GetByteCount(line));
        return line; // SendLineAsync appends CRLF
    }
}
