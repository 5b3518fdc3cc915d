using System.Text;
using System.Text.Json.Nodes;
using Grpc.Backup.Qemu.Tests.Infrastructure;

namespace Grpc.Backup.Qemu.Tests;

/// <summary>
/// Client behaviour that real QEMU cannot provoke (it always replies in order and promptly), checked
/// against a scripted peer.
/// </summary>
public sealed class ClientBehaviourTests
{
    [Fact(Timeout = TestTimeouts.Test)]
    public async Task Greeting_is_exposed()
    {
        await using var peer = new FakeQmpPeer();
        QmpClient client = (await peer.ConnectClientAsync()).Client;

        Assert.Equal(new QmpVersion(9, 2, 3, "fake"), client.Greeting.Version);
        Assert.Equal(["oob"], client.Greeting.Capabilities);
    }

    [Fact(Timeout = TestTimeouts.Test)]
    public async Task Requests_carry_unique_ids_and_the_arguments_unchanged()
    {
        await using var peer = new FakeQmpPeer();
        (QmpClient client, FakeQmpPeer.Connection connection) = await peer.ConnectClientAsync();
        var arguments = new JsonObject { ["node-name"] = "fmt0", ["nested"] = new JsonObject { ["list"] = new JsonArray(1, "two") } };

        // The same arguments object twice: the client must not take ownership of it.
        Task<JsonNode?> first = client.ExecuteAsync("blockdev-del", arguments);
        Task<JsonNode?> second = client.ExecuteAsync("blockdev-del", arguments);
        JsonObject r1 = await connection.ReadRequestAsync();
        JsonObject r2 = await connection.ReadRequestAsync();

        foreach (JsonObject request in new[] { r1, r2 })
        {
            Assert.Equal("blockdev-del", (string?)request["execute"]);
            Assert.True(JsonNode.DeepEquals(arguments, request["arguments"]));
            Assert.Equal(3, request.Count);
        }

        Assert.NotEqual((long)r1["id"]!, (long)r2["id"]!);
        Assert.Null(arguments.Parent);

        await connection.ReplyAsync(r1, new JsonObject());
        await connection.ReplyAsync(r2, new JsonObject());
        await Task.WhenAll(first, second).WaitAsync(TestTimeouts.Prompt);

        // Without arguments the member is omitted rather than sent as null.
        Task<JsonNode?> third = client.ExecuteAsync("query-status");
        JsonObject r3 = await connection.ReadRequestAsync();
        Assert.False(r3.ContainsKey("arguments"));
        await connection.ReplyAsync(r3, new JsonObject());
        await third.WaitAsync(TestTimeouts.Prompt);
    }

    [Fact(Timeout = TestTimeouts.Test)]
    public async Task Replies_are_matched_by_id_not_by_order()
    {
        await using var peer = new FakeQmpPeer();
        (QmpClient client, FakeQmpPeer.Connection connection) = await peer.ConnectClientAsync();

        Task<JsonNode?> a = client.ExecuteAsync("cmd-a");
        JsonObject requestA = await connection.ReadRequestAsync();
        Task<JsonNode?> b = client.ExecuteAsync("cmd-b");
        JsonObject requestB = await connection.ReadRequestAsync();

        await connection.ReplyAsync(requestB, new JsonObject { ["for"] = "b" });
        Assert.Equal("b", (string?)(await b.WaitAsync(TestTimeouts.Prompt))!["for"]);
        Assert.False(a.IsCompleted);
        await connection.SendLineAsync($$$"""{"id": {{{requestA["id"]!.ToJsonString()}}}, "error": {"class": "DeviceNotFound", "desc": "no a"}}""");

        var ex = await Assert.ThrowsAsync<QmpCommandException>(() => a.WaitAsync(TestTimeouts.Prompt));
        Assert.Equal(QmpErrorClass.DeviceNotFound, ex.ErrorClass);
        Assert.Equal("no a", ex.Description);
        Assert.Equal("cmd-a", ex.Command);
    }

    [Fact(Timeout = TestTimeouts.Test)]
    public async Task Messages_are_framed_by_line_however_the_bytes_arrive()
    {
        await using var peer = new FakeQmpPeer();
        (QmpClient client, FakeQmpPeer.Connection connection) = await peer.ConnectClientAsync();
        using QmpEventWaiter stop = client.CreateEventWaiter("STOP");

        // Several messages and a blank line in one write.
        Task<JsonNode?> first = client.ExecuteAsync("first");
        long id = (long)(await connection.ReadRequestAsync())["id"]!;
        await connection.SendAsync(Encoding.UTF8.GetBytes(
            "{\"event\": \"STOP\"}\r\n\r\n{\"return\": {\"n\": 1}, \"id\": " + id + "}\r\n"));
        Assert.Equal(1, (int)(await first.WaitAsync(TestTimeouts.Prompt))!["n"]!);
        await stop.WaitAsync(TestTimeouts.Prompt);

        // One message dribbled a byte at a time, with a multi-byte UTF-8 character in it.
        Task<JsonNode?> second = client.ExecuteAsync("second");
        id = (long)(await connection.ReadRequestAsync())["id"]!;
        byte[] reply = Encoding.UTF8.GetBytes("{\"return\": {\"s\": \"gr\u00fc\u00df \u2713\"}, \"id\": " + id + "}\r\n");
        for (int i = 0; i < reply.Length; i++)
        {
            await connection.SendAsync(reply.AsMemory(i, 1));
            if (i % 16 == 0)
            {
                await Task.Delay(1);
            }
        }

        Assert.Equal("gr\u00fc\u00df \u2713", (string?)(await second.WaitAsync(TestTimeouts.Prompt))!["s"]);
    }

    [Fact(Timeout = TestTimeouts.Test)]
    public async Task Cancelled_command_fails_at_once_and_its_late_reply_is_ignored()
    {
        await using var peer = new FakeQmpPeer();
        (QmpClient client, FakeQmpPeer.Connection connection) = await peer.ConnectClientAsync();

        using var cts = new CancellationTokenSource();
        Task<JsonNode?> cancelled = client.ExecuteAsync("slow-command", cancellationToken: cts.Token);
        JsonObject slow = await connection.ReadRequestAsync();
        cts.Cancel();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => cancelled.WaitAsync(TestTimeouts.Prompt));

        Task<JsonNode?> next = client.ExecuteAsync("next-command");
        JsonObject nextRequest = await connection.ReadRequestAsync();
        await connection.ReplyAsync(slow, new JsonObject { ["for"] = "slow" });
        await connection.ReplyAsync(nextRequest, new JsonObject { ["for"] = "next" });

        Assert.Equal("next", (string?)(await next.WaitAsync(TestTimeouts.Prompt))!["for"]);
        Assert.True(client.IsConnected);
    }

    [Fact(Timeout = TestTimeouts.Test)]
    public async Task Dispose_fails_pending_work_and_closes_the_socket()
    {
        await using var peer = new FakeQmpPeer();
        (QmpClient client, FakeQmpPeer.Connection connection) = await peer.ConnectClientAsync();
        Task<JsonNode?> pending = client.ExecuteAsync("never-answered");
        await connection.ReadRequestAsync();
        using QmpEventWaiter waiter = client.CreateEventWaiter("NEVER");

        await client.DisposeAsync().AsTask().WaitAsync(TestTimeouts.Prompt);

        await Assert.ThrowsAsync<QmpConnectionClosedException>(() => pending.WaitAsync(TestTimeouts.Prompt));
        await Assert.ThrowsAsync<QmpConnectionClosedException>(() => waiter.WaitAsync(TestTimeouts.Prompt));
        await Assert.ThrowsAsync<ObjectDisposedException>(() => client.ExecuteAsync("query-status"));
        Assert.Throws<ObjectDisposedException>(() => client.CreateEventWaiter("NEVER"));
        Assert.True(await connection.WaitForClientCloseAsync(TestTimeouts.Prompt));
        Assert.False(client.IsConnected);
        await client.DisposeAsync(); // idempotent
        client.Dispose();
    }

    [Fact(Timeout = TestTimeouts.Test)]
    public async Task Waiter_filters_by_name_and_predicate_and_a_throwing_predicate_fails_only_its_waiter()
    {
        await using var peer = new FakeQmpPeer();
        (QmpClient client, FakeQmpPeer.Connection connection) = await peer.ConnectClientAsync();
        using QmpEventWaiter job2 = client.CreateEventWaiter("BLOCK_JOB_COMPLETED", d => (string?)d["device"] == "job2");
        using QmpEventWaiter throwing = client.CreateEventWaiter("BLOCK_JOB_COMPLETED", _ => throw new InvalidOperationException("predicate bug"));

        await connection.SendLineAsync("""{"event": "BLOCK_JOB_READY", "data": {"device": "job2"}, "timestamp": {"seconds": -1, "microseconds": -1}}""");
        await connection.SendLineAsync("""{"event": "BLOCK_JOB_COMPLETED", "data": {"device": "job1"}, "timestamp": {"seconds": 1, "microseconds": 0}}""");
        await connection.SendLineAsync("""{"event": "BLOCK_JOB_COMPLETED", "data": {"device": "job2", "len": 7}, "timestamp": {"seconds": 2, "microseconds": 0}}""");

        QmpEvent completed = await job2.WaitAsync(TestTimeouts.Prompt);
        Assert.Equal(7, (int)completed.Data["len"]!);
        Assert.Null(completed.Data.Parent); // detached, so callers may reuse it
        var ex = await Assert.ThrowsAsync<InvalidOperationException>(() => throwing.WaitAsync(TestTimeouts.Prompt));
        Assert.Equal("predicate bug", ex.Message);

        // The reader loop survived the predicate's exception.
        Task<JsonNode?> call = client.ExecuteAsync("query-status");
        await connection.ReplyAsync(await connection.ReadRequestAsync(), new JsonObject { ["ok"] = true });
        Assert.True((bool)(await call.WaitAsync(TestTimeouts.Prompt))!["ok"]!);
    }

    [Fact(Timeout = TestTimeouts.Test)]
    public async Task Events_without_a_usable_timestamp_get_MinValue()
    {
        await using var peer = new FakeQmpPeer();
        (QmpClient client, FakeQmpPeer.Connection connection) = await peer.ConnectClientAsync();
        using QmpEventWaiter waiter = client.CreateEventWaiter("STOP");

        await connection.SendLineAsync("""{"event": "STOP", "timestamp": {"seconds": -1, "microseconds": -1}}""");

        QmpEvent stop = await waiter.WaitAsync(TestTimeouts.Prompt);
        Assert.Equal(DateTimeOffset.MinValue, stop.Timestamp);
        Assert.Empty(stop.Data);
    }
}
