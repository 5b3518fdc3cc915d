using System.Text;
using W = Grpc.Backup.Nbd.Tests.FakeNbdServer.Writer;

namespace Grpc.Backup.Nbd.Tests;

/// <summary>
/// A scripted fake server sends malformed, oversized or out-of-range data. The client must
/// fail with <see cref="NbdProtocolException"/> (or the documented exception) and never hang:
/// every client call is bounded by a timeout.
/// </summary>
public sealed class HostileServerTests
{
    private const ulong Size = 1024 * 1024;
    private static readonly TimeSpan s_timeout = TimeSpan.FromSeconds(10);

    private static Task<NbdClient> ConnectAsync(FakeNbdServer server, NbdClientOptions? options = null) =>
        NbdClient.ConnectAsync(server.SocketPath, "", options).WaitAsync(s_timeout);

    private static Task Bounded(ValueTask operation) => operation.AsTask().WaitAsync(s_timeout);

    /// <summary>Handshakes normally, answers one 512-byte READ with <paramref name="reply"/>, expects a protocol error.</summary>
    private static async Task ExpectReadProtocolErrorAsync(Func<FakeNbdServer, FakeRequest, Task> reply, string expected)
    {
        await using var server = new FakeNbdServer(async s =>
        {
            await s.HandshakeAsync(Size);
            var request = await s.ReadRequestAsync();
            Assert.Equal(0x25609513u, request.Magic);
            Assert.Equal(FakeNbdServer.CmdRead, request.Type);
            await reply(s, request);
        });
        await using var client = await ConnectAsync(server);

        var error = await Assert.ThrowsAsync<NbdProtocolException>(() => Bounded(client.ReadAsync(4096, new byte[512])));

        Assert.Contains(expected, error.Message, StringComparison.Ordinal);
        Assert.False(client.IsConnected);
    }

    [Fact]
    public async Task Bad_greeting_magic_is_a_protocol_error()
    {
        await using var server = new FakeNbdServer(s => s.SendAsync(Encoding.ASCII.GetBytes("HTTP/1.1 200 OK\r\n\r\n")));

        var error = await Assert.ThrowsAsync<NbdProtocolException>(() => ConnectAsync(server));
        Assert.Contains("bad greeting magic", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Oldstyle_server_is_rejected_clearly()
    {
        await using var server = new FakeNbdServer(s => s.SendAsync(new W().U64(0x4e42444d41474943).U64(0x00420281861253).U16(0).Bytes(new byte[200]).ToArray()));

        var error = await Assert.ThrowsAsync<NbdHandshakeException>(() => ConnectAsync(server));
        Assert.Contains("oldstyle", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Oversized_option_reply_is_refused_before_allocation()
    {
        await using var server = new FakeNbdServer(async s =>
        {
            await s.SendGreetingAsync();
            var (option, _) = await s.ReadOptionAsync();
            await s.SendOptionReplyAsync(option, 1, [], lengthOverride: 0x7fff_ffff);
        });

        var error = await Assert.ThrowsAsync<NbdProtocolException>(() => ConnectAsync(server));
        Assert.Contains("exceeds", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Option_reply_with_bad_magic_is_a_protocol_error()
    {
        await using var server = new FakeNbdServer(async s =>
        {
            await s.SendGreetingAsync();
            var (option, _) = await s.ReadOptionAsync();
            await s.SendOptionReplyAsync(option, 1, [], magic: 0xdeadbeef);
        });

        var error = await Assert.ThrowsAsync<NbdProtocolException>(() => ConnectAsync(server));
        Assert.Contains("Bad option reply magic", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Absurd_export_size_is_a_protocol_error()
    {
        await using var server = new FakeNbdServer(s => s.HandshakeAsync(ulong.MaxValue));

        var error = await Assert.ThrowsAsync<NbdProtocolException>(() => ConnectAsync(server));
        Assert.Contains("absurd export size", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Invalid_block_size_constraints_are_a_protocol_error()
    {
        var blockSize = new W().U16(3).U32(3).U32(4096).U32(1024 * 1024).ToArray();
        await using var server = new FakeNbdServer(s => s.HandshakeAsync(Size, blockSizeInfo: blockSize));

        var error = await Assert.ThrowsAsync<NbdProtocolException>(() => ConnectAsync(server));
        Assert.Contains("minimum block size 3", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Go_without_export_info_is_a_protocol_error()
    {
        await using var server = new FakeNbdServer(async s =>
        {
            await s.SendGreetingAsync();
            await s.ReadOptionAsync();
            await s.SendOptionReplyAsync(8, 1, []);
            await s.ReadOptionAsync();
            await s.SendOptionReplyAsync(7, 1, []);
        });

        var error = await Assert.ThrowsAsync<NbdProtocolException>(() => ConnectAsync(server));
        Assert.Contains("NBD_INFO_EXPORT", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Meta_context_the_client_did_not_ask_for_is_a_protocol_error()
    {
        await using var server = new FakeNbdServer(s => s.HandshakeAsync(Size, contexts: [(1, "base:allocation"), (2, "evil:context")]));

        var error = await Assert.ThrowsAsync<NbdProtocolException>(() =>
            ConnectAsync(server, new NbdClientOptions { MetaContexts = { "base:allocation" } }));
        Assert.Contains("evil:context", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Silent_server_hits_the_handshake_timeout()
    {
        await using var server = new FakeNbdServer(_ => Task.CompletedTask);

        await Assert.ThrowsAsync<TimeoutException>(() =>
            ConnectAsync(server, new NbdClientOptions { HandshakeTimeout = TimeSpan.FromMilliseconds(300) }));
    }

    [Fact]
    public async Task Bad_reply_magic_fails_every_pending_request_and_closes_the_connection()
    {
        var hungUp = new TaskCompletionSource();
        await using var server = new FakeNbdServer(async s =>
        {
            await s.HandshakeAsync(Size);
            await s.ReadRequestAsync();
            await s.ReadRequestAsync();
            await s.SendAsync(new W().U32(0x12345678).Bytes(new byte[64]).ToArray());
            await Assert.ThrowsAsync<EndOfStreamException>(() => s.ReceiveAsync(1));
            hungUp.SetResult();
        });
        await using var client = await ConnectAsync(server);

        var first = client.ReadAsync(0, new byte[512]).AsTask();
        var second = client.ReadAsync(4096, new byte[512]).AsTask();

        var error = await Assert.ThrowsAsync<NbdProtocolException>(() => first.WaitAsync(s_timeout));
        Assert.Contains("Invalid reply magic 0x12345678", error.Message, StringComparison.Ordinal);
        Assert.Same(error, await Assert.ThrowsAsync<NbdProtocolException>(() => second.WaitAsync(s_timeout)));
        Assert.False(client.IsConnected);
        var later = await Assert.ThrowsAsync<IOException>(() => Bounded(client.ReadAsync(0, new byte[1])));
        Assert.IsType<NbdProtocolException>(later.InnerException);

        // The client hung up on the misbehaving server without being disposed.
        await hungUp.Task.WaitAsync(s_timeout);
    }

    [Fact]
    public Task Data_chunk_outside_the_requested_range_is_a_protocol_error() =>
        ExpectReadProtocolErrorAsync(
            (s, r) => s.SendChunkAsync(r.Cookie, FakeNbdServer.ReplyOffsetData, new W().U64(r.Offset + r.Length).Bytes(new byte[16]).ToArray()),
            "outside the requested range");

    [Fact]
    public Task Data_chunk_longer_than_the_request_is_a_protocol_error() =>
        ExpectReadProtocolErrorAsync(
            (s, r) => s.SendChunkAsync(r.Cookie, FakeNbdServer.ReplyOffsetData, new W().U64(r.Offset).Bytes(new byte[r.Length * 2]).ToArray()),
            "outside the requested range");

    [Fact]
    public Task Hole_chunk_with_zero_size_is_a_protocol_error() =>
        ExpectReadProtocolErrorAsync(
            (s, r) => s.SendChunkAsync(r.Cookie, FakeNbdServer.ReplyOffsetHole, new W().U64(r.Offset).U32(0).ToArray()),
            "zero hole size");

    [Fact]
    public Task Unknown_non_error_reply_type_is_a_protocol_error() =>
        ExpectReadProtocolErrorAsync(
            (s, r) => s.SendChunkAsync(r.Cookie, 77, new byte[4]),
            "Unexpected structured reply type 77");

    [Fact]
    public Task Reply_for_an_unknown_cookie_is_a_protocol_error() =>
        ExpectReadProtocolErrorAsync(
            (s, r) => s.SendChunkAsync(r.Cookie ^ 0xFFFF_0000_0000, FakeNbdServer.ReplyNone, []),
            "unknown cookie");

    [Fact]
    public Task Success_without_all_the_data_is_a_protocol_error() =>
        ExpectReadProtocolErrorAsync(
            (s, r) => s.SendChunkAsync(r.Cookie, FakeNbdServer.ReplyOffsetData, new W().U64(r.Offset).Bytes(new byte[r.Length / 2]).ToArray()),
            "sent only 256 of 512 bytes");

    [Fact]
    public Task Overlapping_chunks_are_a_protocol_error() =>
        ExpectReadProtocolErrorAsync(
            async (s, r) =>
            {
                await s.SendChunkAsync(r.Cookie, FakeNbdServer.ReplyOffsetHole, new W().U64(r.Offset + 256).U32(256).ToArray(), flags: 0);
                await s.SendChunkAsync(r.Cookie, FakeNbdServer.ReplyOffsetData, new W().U64(r.Offset).Bytes(new byte[300]).ToArray(), flags: 0);
            },
            "overlapping");

    [Fact]
    public Task Simple_reply_to_a_structured_read_is_a_protocol_error() =>
        ExpectReadProtocolErrorAsync(
            (s, r) => s.SendSimpleReplyAsync(r.Cookie, 0, new byte[r.Length]),
            "simple reply to READ");

    [Fact]
    public Task Error_chunk_with_message_longer_than_the_chunk_is_a_protocol_error() =>
        ExpectReadProtocolErrorAsync(
            (s, r) => s.SendChunkAsync(r.Cookie, FakeNbdServer.ReplyError, new W().U32(5).U16(1000).Bytes(new byte[10]).ToArray()),
            "does not fit");

    [Fact]
    public async Task Block_status_extents_beyond_the_request_are_a_protocol_error()
    {
        await using var server = new FakeNbdServer(async s =>
        {
            await s.HandshakeAsync(Size, contexts: [(9, "base:allocation")]);
            var r = await s.ReadRequestAsync();
            Assert.Equal(FakeNbdServer.CmdBlockStatus, r.Type);
            await s.SendChunkAsync(r.Cookie, FakeNbdServer.ReplyBlockStatus, new W().U32(9).U32(r.Length).U32(0).U32(4096).U32(3).ToArray());
        });
        await using var client = await ConnectAsync(server, new NbdClientOptions { MetaContexts = { "base:allocation" } });

        var error = await Assert.ThrowsAsync<NbdProtocolException>(() => client.GetBlockStatusAsync("base:allocation", 0, 65536).AsTask().WaitAsync(s_timeout));
        Assert.Contains("beyond the requested range", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Block_status_for_an_unknown_context_id_is_a_protocol_error()
    {
        await using var server = new FakeNbdServer(async s =>
        {
            await s.HandshakeAsync(Size, contexts: [(9, "base:allocation")]);
            var r = await s.ReadRequestAsync();
            await s.SendChunkAsync(r.Cookie, FakeNbdServer.ReplyBlockStatus, new W().U32(10).U32(4096).U32(0).ToArray());
        });
        await using var client = await ConnectAsync(server, new NbdClientOptions { MetaContexts = { "base:allocation" } });

        var error = await Assert.ThrowsAsync<NbdProtocolException>(() => client.GetBlockStatusAsync("base:allocation", 0, 65536).AsTask().WaitAsync(s_timeout));
        Assert.Contains("never negotiated", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Short_block_status_answers_and_an_overlong_final_extent_are_accepted()
    {
        await using var server = new FakeNbdServer(async s =>
        {
            await s.HandshakeAsync(Size, contexts: [(9, "base:allocation")]);
            var r = await s.ReadRequestAsync();
            await s.SendChunkAsync(r.Cookie, FakeNbdServer.ReplyBlockStatus, new W().U32(9).U32(4096).U32(0).U32(8192).U32(3).ToArray());
            r = await s.ReadRequestAsync();
            await s.SendChunkAsync(r.Cookie, FakeNbdServer.ReplyBlockStatus, new W().U32(9).U32(4096).U32(0).U32(1_000_000).U32(3).ToArray());
        });
        await using var client = await ConnectAsync(server, new NbdClientOptions { MetaContexts = { "base:allocation" } });

        var partial = await client.GetBlockStatusAsync("base:allocation", 0, 65536).AsTask().WaitAsync(s_timeout);
        Assert.Equal(new[] { new NbdExtent(0, 4096, 0), new NbdExtent(4096, 8192, 3) }, partial);

        var clipped = await client.GetBlockStatusAsync("base:allocation", 65536, 65536).AsTask().WaitAsync(s_timeout);
        Assert.Equal(new[] { new NbdExtent(65536, 4096, 0), new NbdExtent(65536 + 4096, 65536 - 4096, 3) }, clipped);
    }

    [Fact]
    public async Task Server_closing_mid_payload_fails_the_read_without_hanging()
    {
        await using var server = new FakeNbdServer(async s =>
        {
            await s.HandshakeAsync(Size);
            var r = await s.ReadRequestAsync();
            await s.SendAsync(new W().U32(0x668e33ef).U16(1).U16(FakeNbdServer.ReplyOffsetData).U64(r.Cookie).U32(8 + r.Length).U64(r.Offset).Bytes(new byte[100]).ToArray());
            s.Close();
        });
        await using var client = await ConnectAsync(server);

        var error = await Assert.ThrowsAnyAsync<IOException>(() => Bounded(client.ReadAsync(0, new byte[65536])));
        Assert.IsNotType<NbdException>(error);
        Assert.Contains("closed the connection", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Error_offset_chunk_is_reported_with_offset_and_message_and_the_connection_survives()
    {
        await using var server = new FakeNbdServer(async s =>
        {
            await s.HandshakeAsync(Size);
            var r = await s.ReadRequestAsync();
            var message = Encoding.UTF8.GetBytes("bad sector");
            await s.SendChunkAsync(r.Cookie, FakeNbdServer.ReplyOffsetData, new W().U64(r.Offset).Bytes(new byte[100]).ToArray(), flags: 0);
            await s.SendChunkAsync(r.Cookie, FakeNbdServer.ReplyErrorOffset, new W().U32(5).U16((ushort)message.Length).Bytes(message).U64(r.Offset + 100).ToArray());
            r = await s.ReadRequestAsync();
            await s.SendChunkAsync(r.Cookie, FakeNbdServer.ReplyOffsetData, new W().U64(r.Offset).Bytes(Enumerable.Repeat((byte)7, (int)r.Length).ToArray()).ToArray());
        });
        await using var client = await ConnectAsync(server);

        var error = await Assert.ThrowsAsync<NbdException>(() => Bounded(client.ReadAsync(8192, new byte[512])));
        Assert.True(error.IsReadError);
        Assert.Equal(NbdError.IOError, error.Error);
        Assert.Equal(8192 + 100, error.ErrorOffset);
        Assert.Equal("bad sector", error.ServerMessage);
        Assert.Contains("bad sector", error.Message, StringComparison.Ordinal);

        var buffer = new byte[256];
        await Bounded(client.ReadAsync(0, buffer));
        Assert.All(buffer, b => Assert.Equal(7, b));
    }

    [Fact]
    public async Task Unknown_error_reply_type_is_a_command_error_not_a_protocol_error()
    {
        await using var server = new FakeNbdServer(async s =>
        {
            await s.HandshakeAsync(Size);
            var r = await s.ReadRequestAsync();
            await s.SendChunkAsync(r.Cookie, 0x8000 | 99, new W().U32(22).U16(0).Bytes(new byte[5]).ToArray());
            r = await s.ReadRequestAsync();
            await s.SendSimpleReplyAsync(r.Cookie, 0);
        });
        await using var client = await ConnectAsync(server);

        var error = await Assert.ThrowsAsync<NbdException>(() => Bounded(client.WriteAsync(0, new byte[10])));
        Assert.Equal(NbdError.InvalidArgument, error.Error);
        Assert.Equal(NbdCommand.Write, error.Command);

        await Bounded(client.WriteAsync(0, new byte[10]));
    }

    [Fact]
    public async Task Out_of_order_replies_and_chunks_are_reassembled()
    {
        await using var server = new FakeNbdServer(async s =>
        {
            await s.HandshakeAsync(Size);
            var first = await s.ReadRequestAsync();
            var second = await s.ReadRequestAsync();

            // Answer the second request first, with its chunks in reverse order.
            await s.SendChunkAsync(second.Cookie, FakeNbdServer.ReplyOffsetData, new W().U64(second.Offset + 200).Bytes(Enumerable.Repeat((byte)2, 56).ToArray()).ToArray(), flags: 0);
            await s.SendChunkAsync(second.Cookie, FakeNbdServer.ReplyOffsetHole, new W().U64(second.Offset + 100).U32(100).ToArray(), flags: 0);
            await s.SendChunkAsync(second.Cookie, FakeNbdServer.ReplyOffsetData, new W().U64(second.Offset).Bytes(Enumerable.Repeat((byte)1, 100).ToArray()).ToArray(), flags: 0);
            await s.SendChunkAsync(second.Cookie, FakeNbdServer.ReplyNone, []);
            await s.SendChunkAsync(first.Cookie, FakeNbdServer.ReplyOffsetData, new W().U64(first.Offset).Bytes(Enumerable.Repeat((byte)9, (int)first.Length).ToArray()).ToArray());
        });
        await using var client = await ConnectAsync(server);
        var a = new byte[128];
        var b = new byte[256];
        b.AsSpan().Fill(0xFF);

        await Task.WhenAll(client.ReadAsync(0, a).AsTask(), client.ReadAsync(4096, b).AsTask()).WaitAsync(s_timeout);

        Assert.All(a, x => Assert.Equal(9, x));
        Assert.All(b[..100], x => Assert.Equal(1, x));
        Assert.All(b[100..200], x => Assert.Equal(0, x));
        Assert.All(b[200..], x => Assert.Equal(2, x));
    }

    [Fact]
    public async Task Cancelled_read_returns_promptly_and_its_late_reply_is_discarded()
    {
        var lateReplySent = new TaskCompletionSource();
        var cancelled = new TaskCompletionSource();
        await using var server = new FakeNbdServer(async s =>
        {
            await s.HandshakeAsync(Size);
            var stalled = await s.ReadRequestAsync();
            await cancelled.Task;
            await s.SendChunkAsync(stalled.Cookie, FakeNbdServer.ReplyOffsetData, new W().U64(stalled.Offset).Bytes(Enumerable.Repeat((byte)0xAA, (int)stalled.Length).ToArray()).ToArray());
            lateReplySent.SetResult();
            var next = await s.ReadRequestAsync();
            await s.SendChunkAsync(next.Cookie, FakeNbdServer.ReplyOffsetData, new W().U64(next.Offset).Bytes(Enumerable.Repeat((byte)0xBB, (int)next.Length).ToArray()).ToArray());
        });
        await using var client = await ConnectAsync(server);
        var abandoned = new byte[1000];

        using (var cts = new CancellationTokenSource(TimeSpan.FromMilliseconds(200)))
        {
            await Assert.ThrowsAnyAsync<OperationCanceledException>(() => client.ReadAsync(0, abandoned, cts.Token).AsTask().WaitAsync(s_timeout));
        }

        cancelled.SetResult();
        await lateReplySent.Task.WaitAsync(s_timeout);
        var next = new byte[1000];
        await Bounded(client.ReadAsync(0, next));

        Assert.All(next, x => Assert.Equal(0xBB, x));
        Assert.All(abandoned, x => Assert.Equal(0, x));
        Assert.True(client.IsConnected);
    }

    [Fact]
    public async Task Dispose_fails_pending_requests_and_does_not_hang()
    {
        await using var server = new FakeNbdServer(async s =>
        {
            await s.HandshakeAsync(Size);
            await s.ReadRequestAsync();
        });
        var client = await ConnectAsync(server);
        var pending = client.ReadAsync(0, new byte[4096]).AsTask();

        await client.DisposeAsync().AsTask().WaitAsync(s_timeout);

        await Assert.ThrowsAsync<ObjectDisposedException>(() => pending.WaitAsync(s_timeout));
    }
}
