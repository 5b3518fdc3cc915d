using System.Buffers.Binary;
using System.Diagnostics;
using System.Net.Sockets;

namespace Grpc.Backup.Nbd.Tests;

/// <summary>
/// <see cref="NbdGuard"/> in front of a real qemu-storage-daemon snapshot (copy-before-write over a raw fleecing
/// image, a snapshot-access node exported writable with discard=unmap, exactly as the host builds it), attacked by a
/// hostile client. Each test asserts what must not happen: QEMU dies, data changes, memory grows, a connection drops.
/// </summary>
[Collection(NbdGuardCollection.Name)]
public sealed class NbdGuardTests : IAsyncLifetime, IDisposable
{
    private const int M = 1024 * 1024;
    private const int Cluster = 64 * 1024;
    private const long DiskSize = 64L * M;
    private const int DataSize = 16 * M;

    private readonly TestDirectory _directory = new();
    private CbwSnapshotServer? _snapshot;
    private byte[] _data = [];

    private NbdServer Qemu => _snapshot!.Qemu;

    private string ImagePath => _snapshot!.ImagePath;

    public async Task InitializeAsync()
    {
        _data = TestData.Random(DataSize, seed: 151);
        _snapshot = await CbwSnapshotServer.StartAsync(_directory, DiskSize, _data);
    }

    public async Task DisposeAsync()
    {
        if (_snapshot is not null)
        {
            await _snapshot.DisposeAsync();
        }
    }

    public void Dispose() => _directory.Dispose();

    private Task<NbdGuard> StartGuardAsync() => _snapshot!.StartGuardAsync();

    private static async Task<RawNbdClient> GoAsync(Socket socket)
    {
        var client = await RawNbdClient.GreetAsync(socket);
        var replies = await client.OptionAsync(RawNbdClient.OptGo, RawNbdClient.InfoRequest("snap"));
        Assert.Equal(RawNbdClient.RepAck, replies[^1].Type);
        return client;
    }

    [Fact]
    public async Task A_budget_smaller_than_one_request_is_refused_before_connecting()
    {
        var refused = await Assert.ThrowsAsync<ArgumentOutOfRangeException>(
            () => _snapshot!.StartGuardAsync(maxBytesInFlight: 1024 * 1024, maxRequestSize: 4 * 1024 * 1024));
        Assert.Contains("MaxBytesInFlight must be at least MaxRequestSize", refused.Message, StringComparison.Ordinal);

        // The same request size with a budget of exactly one request is a working guard.
        await using var guard = await _snapshot!.StartGuardAsync(maxBytesInFlight: 4 * 1024 * 1024, maxRequestSize: 4 * 1024 * 1024);
        await using var client = await NbdClient.ConnectAsync(await guard.ConnectAsync(), "snap", new NbdClientOptions());
        var read = new byte[4 * 1024 * 1024];
        await client.ReadAsync(0, read);
        Assert.Equal(_data.AsSpan(0, read.Length).ToArray(), read);
    }

    [Fact]
    public async Task Reads_and_block_status_through_the_guard_match_the_snapshot()
    {
        await using var guard = await StartGuardAsync();
        var options = new NbdClientOptions();
        options.MetaContexts.Add(NbdMetaContexts.BaseAllocation);
        await using var client = await NbdClient.ConnectAsync(await guard.ConnectAsync(), "snap", options);

        Assert.Equal(DiskSize, client.Export.Size);
        Assert.Equal(new NbdBlockSizeConstraints(Cluster, Cluster, 32 * M), client.Export.BlockSize);
        Assert.True(client.Export.CanTrim);
        Assert.False(client.Export.CanFlush || client.Export.CanWriteZeroes || client.Export.CanMultiConn);
        var read = new byte[DataSize];
        await client.ReadAsync(0, read);
        Assert.Equal(TestData.Sha256(_data), TestData.Sha256(read));

        var extents = TestData.Coalesce(await TestData.MapAsync(client, NbdMetaContexts.BaseAllocation));
        Assert.All(extents, e => Assert.True(e.Offset % Cluster == 0 && e.Length % Cluster == 0, $"extent {e} is not in whole clusters"));
        Assert.Equal(0u, extents[0].Flags & NbdExtentFlags.Hole);
        Assert.True(extents[0].Length >= DataSize);
        Assert.NotEqual(0u, extents[^1].Flags & NbdExtentFlags.Hole);
    }

    /// <summary>
    /// The host's bandwidth limit lives in the guard (issue 15): every READ waits for the pacer with its length before it
    /// goes upstream, and is answered only once the pacer lets it through.
    /// </summary>
    [Fact]
    public async Task Reads_wait_for_the_pacer_before_they_go_upstream()
    {
        var paced = new System.Collections.Concurrent.ConcurrentQueue<int>();
        var gate = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        await using var guard = await NbdGuard.StartAsync(new NbdGuardOptions
        {
            UpstreamSocketPath = Qemu.SocketPath,
            ExportName = "snap",
            ReadPacer = async (length, cancellationToken) =>
            {
                paced.Enqueue(length);
                await gate.Task.WaitAsync(cancellationToken);
            },
        });
        await using var client = await NbdClient.ConnectAsync(await guard.ConnectAsync(), "snap", new NbdClientOptions());

        var read = new byte[2 * M];
        Task reading = client.ReadAsync(0, read).AsTask();
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(30);
        while (paced.IsEmpty)
        {
            Assert.True(DateTime.UtcNow < deadline, "the read never reached the pacer");
            await Task.Delay(10);
        }
        Assert.False(reading.IsCompleted, "the read was answered before the pacer let it through");
        gate.SetResult();
        await reading.WaitAsync(TimeSpan.FromSeconds(30));
        Assert.Equal(TestData.Sha256(_data.AsSpan(0, 2 * M)), TestData.Sha256(read));
        Assert.Equal(2 * M, paced.Sum());
    }

    [Fact]
    public async Task Simple_reply_clients_get_whole_reads_holes_as_zeroes()
    {
        await using var guard = await StartGuardAsync();
        await using var client = await NbdClient.ConnectAsync(await guard.ConnectAsync(), "snap", new NbdClientOptions { RequestStructuredReplies = false });

        Assert.False(client.StructuredReplies);
        var read = new byte[2 * M];
        await client.ReadAsync(DataSize - M, read);
        Assert.Equal(TestData.Sha256(_data.AsSpan(DataSize - M)), TestData.Sha256(read.AsSpan(0, M)));
        Assert.All(read[M..], b => Assert.Equal(0, b));
    }

    [Fact]
    public async Task Misaligned_trim_is_rounded_inward_and_qemu_survives()
    {
        await using var guard = await StartGuardAsync();
        using var client = await GoAsync(await guard.ConnectAsync());

        // The exact request that aborts QEMU 7.2 when sent straight to it (hbitmap_reset: Assertion
        // 'QEMU_IS_ALIGNED(start, gran)').
        await client.SendRequestAsync(RawNbdClient.CmdTrim, 1, 4096, 4096);
        Assert.Equal((0u, 1UL), Strip(await client.ReceiveSimpleReplyAsync()));

        // A range straddling clusters reaches QEMU only as its whole inner cluster (64 KiB .. 128 KiB).
        await client.SendRequestAsync(RawNbdClient.CmdTrim, 2, Cluster - 512, Cluster + 1024);
        Assert.Equal((0u, 2UL), Strip(await client.ReceiveSimpleReplyAsync()));

        await client.SendRequestAsync(RawNbdClient.CmdRead, 3, 0, Cluster);
        var (error, _, first) = await client.ReceiveSimpleReplyAsync(Cluster);
        Assert.Equal(0u, error);
        Assert.True(Qemu.IsRunning, Qemu.OutputText);
        Assert.Equal(TestData.Sha256(_data.AsSpan(0, Cluster)), TestData.Sha256(first));

        // The cluster after the trimmed one is untouched too.
        await client.SendRequestAsync(RawNbdClient.CmdRead, 4, 2 * Cluster, Cluster);
        (error, _, var third) = await client.ReceiveSimpleReplyAsync(Cluster);
        Assert.Equal(0u, error);
        Assert.Equal(TestData.Sha256(_data.AsSpan(2 * Cluster, Cluster)), TestData.Sha256(third));
        Assert.True(Qemu.IsRunning, Qemu.OutputText);
    }

    [Fact]
    public async Task Listing_and_other_exports_are_refused()
    {
        await using var guard = await StartGuardAsync();
        using var client = await RawNbdClient.GreetAsync(await guard.ConnectAsync());

        Assert.Equal(RawNbdClient.ErrPolicy, (await client.OptionAsync(RawNbdClient.OptList, []))[^1].Type);
        Assert.Equal(RawNbdClient.ErrUnknown, (await client.OptionAsync(RawNbdClient.OptGo, RawNbdClient.InfoRequest("live")))[^1].Type);
        Assert.Equal(RawNbdClient.ErrUnknown, (await client.OptionAsync(RawNbdClient.OptInfo, RawNbdClient.InfoRequest("")))[^1].Type);
        Assert.Equal(RawNbdClient.ErrUnsupported, (await client.OptionAsync(RawNbdClient.OptStartTls, []))[^1].Type);
        Assert.Equal(RawNbdClient.ErrUnsupported, (await client.OptionAsync(99, []))[^1].Type);
        Assert.Equal(RawNbdClient.ErrUnknown,
            (await client.OptionAsync(RawNbdClient.OptListMetaContext, RawNbdClient.MetaContextRequest("live", "base:")))[^1].Type);

        // Only the contexts the guard negotiated upstream are listed, never QEMU's others.
        var contexts = await client.OptionAsync(RawNbdClient.OptListMetaContext, RawNbdClient.MetaContextRequest("snap"));
        Assert.Equal([RawNbdClient.RepMetaContext, RawNbdClient.RepAck], contexts.Select(r => r.Type));
        Assert.Equal("base:allocation", System.Text.Encoding.UTF8.GetString(contexts[0].Data.AsSpan(4)));

        // The client is still served its one export afterwards.
        var go = await client.OptionAsync(RawNbdClient.OptGo, RawNbdClient.InfoRequest("snap"));
        Assert.Equal(RawNbdClient.RepAck, go[^1].Type);

        // EXPORT_NAME of another export has no error reply: the connection ends.
        using var other = await RawNbdClient.GreetAsync(await guard.ConnectAsync());
        var name = System.Text.Encoding.UTF8.GetBytes("live");
        var option = new byte[16 + name.Length];
        BinaryPrimitives.WriteUInt64BigEndian(option, 0x49484156454F5054);
        BinaryPrimitives.WriteUInt32BigEndian(option.AsSpan(8), RawNbdClient.OptExportName);
        BinaryPrimitives.WriteUInt32BigEndian(option.AsSpan(12), (uint)name.Length);
        name.CopyTo(option, 16);
        await other.SendAsync(option);
        Assert.True(await other.IsClosedAsync());
    }

    [Fact]
    public async Task Send_df_is_advertised_only_with_structured_replies()
    {
        // Found by the fuzzer: the protocol says a server MUST leave NBD_FLAG_SEND_DF clear unless structured replies
        // were negotiated; the guard advertised it to every client.
        await using var guard = await StartGuardAsync();
        using var simple = await RawNbdClient.GreetAsync(await guard.ConnectAsync());
        Assert.Equal(0, ExportFlags(await simple.OptionAsync(RawNbdClient.OptInfo, RawNbdClient.InfoRequest("snap"))) & SendDf);
        Assert.Equal(0, ExportFlags(await simple.OptionAsync(RawNbdClient.OptGo, RawNbdClient.InfoRequest("snap"))) & SendDf);

        using var structured = await RawNbdClient.GreetAsync(await guard.ConnectAsync());
        Assert.Equal(RawNbdClient.RepAck, (await structured.OptionAsync(RawNbdClient.OptStructuredReply, []))[^1].Type);
        Assert.Equal(SendDf, ExportFlags(await structured.OptionAsync(RawNbdClient.OptGo, RawNbdClient.InfoRequest("snap"))) & SendDf);
    }

    [Fact]
    public async Task A_failed_set_meta_context_leaves_no_context_selected()
    {
        // Found by the fuzzer: SET_META_CONTEXT replaces the selection even when it fails (the protocol); the guard kept
        // the earlier selection and answered BLOCK_STATUS for it.
        await using var guard = await StartGuardAsync();
        using var client = await RawNbdClient.GreetAsync(await guard.ConnectAsync());
        Assert.Equal(RawNbdClient.RepAck, (await client.OptionAsync(RawNbdClient.OptStructuredReply, []))[^1].Type);
        var set = await client.OptionAsync(RawNbdClient.OptSetMetaContext, RawNbdClient.MetaContextRequest("snap", "base:allocation"));
        Assert.Equal([RawNbdClient.RepMetaContext, RawNbdClient.RepAck], set.Select(r => r.Type));
        Assert.Equal(RawNbdClient.ErrUnknown,
            (await client.OptionAsync(RawNbdClient.OptSetMetaContext, RawNbdClient.MetaContextRequest("live", "base:allocation")))[^1].Type);
        Assert.Equal(RawNbdClient.RepAck, (await client.OptionAsync(RawNbdClient.OptGo, RawNbdClient.InfoRequest("snap")))[^1].Type);

        // The structured error chunk: magic, flags (done), type (NBD_REPLY_TYPE_ERROR), cookie, length, then EINVAL.
        await client.SendRequestAsync(RawNbdClient.CmdBlockStatus, 1, 0, Cluster);
        var chunk = await client.ReceiveExactAsync(20);
        Assert.Equal(0x668e33efu, BinaryPrimitives.ReadUInt32BigEndian(chunk));
        Assert.Equal(0x8001, BinaryPrimitives.ReadUInt16BigEndian(chunk.AsSpan(6)));
        var error = await client.ReceiveExactAsync((int)BinaryPrimitives.ReadUInt32BigEndian(chunk.AsSpan(16)));
        Assert.Equal(22u, BinaryPrimitives.ReadUInt32BigEndian(error));
    }

    [Fact]
    public async Task Writes_and_unadvertised_commands_are_refused_and_data_is_unchanged()
    {
        await using var guard = await StartGuardAsync();
        using var client = await GoAsync(await guard.ConnectAsync());

        await client.SendRequestAsync(RawNbdClient.CmdWrite, 1, 0, 4096, payload: new byte[4096]);
        Assert.Equal((1u, 1UL), Strip(await client.ReceiveSimpleReplyAsync()));  // EPERM
        await client.SendRequestAsync(RawNbdClient.CmdWriteZeroes, 2, 0, Cluster);
        Assert.Equal((1u, 2UL), Strip(await client.ReceiveSimpleReplyAsync()));
        await client.SendRequestAsync(RawNbdClient.CmdFlush, 3, 0, 0);
        Assert.Equal((22u, 3UL), Strip(await client.ReceiveSimpleReplyAsync())); // EINVAL
        await client.SendRequestAsync(RawNbdClient.CmdCache, 4, 0, Cluster);
        Assert.Equal((22u, 4UL), Strip(await client.ReceiveSimpleReplyAsync()));
        await client.SendRequestAsync(42, 5, 0, Cluster);
        Assert.Equal((22u, 5UL), Strip(await client.ReceiveSimpleReplyAsync()));

        // Oversized, past the end, unknown flags, and block status without structured replies.
        await client.SendRequestAsync(RawNbdClient.CmdRead, 6, 0, (32 * M) + Cluster);
        Assert.Equal((22u, 6UL), Strip(await client.ReceiveSimpleReplyAsync()));
        await client.SendRequestAsync(RawNbdClient.CmdRead, 7, (ulong)DiskSize - 4096, 8192);
        Assert.Equal((22u, 7UL), Strip(await client.ReceiveSimpleReplyAsync()));
        await client.SendRequestAsync(RawNbdClient.CmdRead, 8, 0, 4096, flags: 1 << 0);
        Assert.Equal((22u, 8UL), Strip(await client.ReceiveSimpleReplyAsync()));
        await client.SendRequestAsync(RawNbdClient.CmdBlockStatus, 9, 0, Cluster);
        Assert.Equal((22u, 9UL), Strip(await client.ReceiveSimpleReplyAsync()));

        await client.SendRequestAsync(RawNbdClient.CmdRead, 10, 0, 4096);
        var (error, _, data) = await client.ReceiveSimpleReplyAsync(4096);
        Assert.Equal(0u, error);
        Assert.Equal(TestData.Sha256(_data.AsSpan(0, 4096)), TestData.Sha256(data));
        Assert.Equal(TestData.Sha256(_data.AsSpan(0, 4096)), TestData.Sha256(TestData.ReadAt(ImagePath, 0, 4096)));
        Assert.True(Qemu.IsRunning, Qemu.OutputText);
    }

    [Fact]
    public async Task A_flood_of_reads_never_collected_is_backpressure_not_memory()
    {
        await using var guard = await StartGuardAsync();
        using var client = await GoAsync(await guard.ConnectAsync());
        GC.Collect();
        var hostBefore = ProcessStatus.RssBytes(Environment.ProcessId);
        var qemuBefore = ProcessStatus.RssBytes(Qemu.ProcessId);

        // 64 pipelined 32 MiB reads (2 GiB) and not one reply read. Straight to QEMU this grew it by ~350 MiB for 16.
        for (var i = 0; i < 64; i++)
        {
            await client.SendRequestAsync(RawNbdClient.CmdRead, (ulong)i, 0, 32 * M);
        }

        // The guard takes requests until its byte budget is spent, then stops reading: wait for that state.
        var clock = Stopwatch.StartNew();
        while (guard.BytesInFlight < NbdGuardOptions.DefaultMaxBytesInFlight)
        {
            Assert.True(clock.Elapsed < TimeSpan.FromSeconds(60), $"the guard holds {guard.BytesInFlight} bytes in flight");
            await Task.Delay(50);
        }

        var hostGrowth = ProcessStatus.RssBytes(Environment.ProcessId) - hostBefore;
        var qemuGrowth = ProcessStatus.RssBytes(Qemu.ProcessId) - qemuBefore;
        Assert.True(hostGrowth < 256L * M, $"host RSS grew by {hostGrowth / M} MiB");
        Assert.True(qemuGrowth < 128L * M, $"QEMU RSS grew by {qemuGrowth / M} MiB");

        // Collecting the replies drains the flood in order, and every one is the data.
        for (var i = 0; i < 64; i++)
        {
            var (error, _, data) = await client.ReceiveSimpleReplyAsync(32 * M);
            Assert.Equal(0u, error);
            Assert.Equal(TestData.Sha256(_data), TestData.Sha256(data.AsSpan(0, DataSize)));
        }
    }

    [Fact]
    public async Task A_client_that_shakes_hands_after_qemus_handshake_timer_still_reads()
    {
        await using var guard = await StartGuardAsync();
        var late = await guard.ConnectAsync();

        // QEMU's own timer: a connection to it that never finishes its handshake is dropped. Opened after the guard's
        // upstream connection, so once QEMU has dropped it, the guard's would have been dropped too were it not past
        // the handshake.
        using var canary = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        await canary.ConnectAsync(new UnixDomainSocketEndPoint(Qemu.SocketPath));
        var canaryClient = new RawNbdClient(canary);
        await canaryClient.ReceiveExactAsync(18);
        var dropped = canaryClient.IsClosedAsync();
        Assert.Same(dropped, await Task.WhenAny(dropped, Task.Delay(TimeSpan.FromSeconds(120))));
        Assert.True(await dropped);

        using var client = await GoAsync(late);
        await client.SendRequestAsync(RawNbdClient.CmdRead, 1, M, M);
        var (error, _, data) = await client.ReceiveSimpleReplyAsync(M);
        Assert.Equal(0u, error);
        Assert.Equal(TestData.Sha256(_data.AsSpan(M, M)), TestData.Sha256(data));
    }

    [Fact]
    public async Task A_listening_guard_serves_nbd_clients_and_disposal_ends_them()
    {
        var guard = await StartGuardAsync();
        var path = _directory.File("guard.sock");
        guard.Listen(path);
        var client = await NbdClient.ConnectAsync(path, "snap");
        var read = new byte[M];
        await client.ReadAsync(0, read);
        Assert.Equal(TestData.Sha256(_data.AsSpan(0, M)), TestData.Sha256(read));
        Assert.Equal(1, guard.ActiveConnections);

        await guard.DisposeAsync();
        Assert.False(File.Exists(path));
        await Assert.ThrowsAnyAsync<IOException>(async () => await client.ReadAsync(0, read));
        await client.DisposeAsync();
    }

    [Fact]
    public async Task Unaligned_punch_hole_on_an_nbdfuse_file_served_by_the_guard_leaves_qemu_up()
    {
        // FILE_HANDLE: nbdfuse is the guard's client, with byte granularity advertised so page-sized reads pass libnbd.
        await using var guard = await NbdGuard.StartAsync(new NbdGuardOptions
        {
            UpstreamSocketPath = Qemu.SocketPath,
            ExportName = "snap",
            MinimumBlockSize = 1,
        });
        var socket = _directory.File("guard.sock");
        guard.Listen(socket);
        var mount = Directory.CreateDirectory(_directory.File("mnt")).FullName;
        var pidFile = _directory.File("nbdfuse.pid");
        using var nbdfuse = Process.Start(new ProcessStartInfo("nbdfuse", ["-P", pidFile, mount, $"nbd+unix:///snap?socket={socket}"])
        {
            UseShellExecute = false,
            RedirectStandardError = true,
        })!;
        try
        {
            var clock = Stopwatch.StartNew();
            while (!File.Exists(pidFile))
            {
                Assert.False(nbdfuse.HasExited, "nbdfuse exited");
                Assert.True(clock.Elapsed < TimeSpan.FromSeconds(60), "nbdfuse did not mount");
                await Task.Delay(20);
            }

            var file = Path.Combine(mount, "nbd");

            // What aborts QEMU 7.2 through an nbdfuse mount of the export itself.
            await NbdServer.RunToolAsync("fallocate", "--punch-hole", "--keep-size", "--offset", "4096", "--length", "4096", file);
            await NbdServer.RunToolAsync("fallocate", "--punch-hole", "--keep-size", "--offset", "100", "--length", "70000", file);

            Assert.True(Qemu.IsRunning, Qemu.OutputText);
            Assert.Equal(TestData.Sha256(_data.AsSpan(0, 4 * Cluster)), TestData.Sha256(TestData.ReadAt(file, 0, 4 * Cluster)));
        }
        finally
        {
            await NbdServer.RunToolAsync("fusermount3", "-u", mount);
            await nbdfuse.WaitForExitAsync();
        }
    }

    private const int SendDf = 1 << 7;

    /// <summary>The transmission flags of the NBD_INFO_EXPORT reply among a GO's or INFO's replies.</summary>
    private static int ExportFlags(List<(uint Type, byte[] Data)> replies)
    {
        Assert.Equal(RawNbdClient.RepAck, replies[^1].Type);
        var export = Assert.Single(replies, r => r.Type == RawNbdClient.RepInfo && BinaryPrimitives.ReadUInt16BigEndian(r.Data) == 0);
        return BinaryPrimitives.ReadUInt16BigEndian(export.Data.AsSpan(10));
    }

    private static (uint, ulong) Strip((uint Error, ulong Cookie, byte[] Data) reply) => (reply.Error, reply.Cookie);
}
