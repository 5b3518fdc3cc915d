namespace Grpc.Backup.Nbd.Tests;

/// <summary>
/// qemu-nbd serving a qcow2 with a persistent dirty bitmap: exact dirty ranges via
/// qemu:dirty-bitmap:bm, exact allocation via base:allocation, and holes read as zeroes.
/// </summary>
public sealed class QemuNbdBlockStatusTests : IAsyncLifetime, IDisposable
{
    private const long ImageSize = 16 * 1024 * 1024;
    private const long M = 1024 * 1024;
    private const long K = 1024;

    private static readonly string s_bitmap = NbdMetaContexts.QemuDirtyBitmap("bm");

    private readonly TestDirectory _directory = new();
    private NbdServer? _server;

    private NbdServer Server => _server!;

    public async Task InitializeAsync()
    {
        var image = _directory.File("disk.qcow2");
        await NbdServer.RunToolAsync("qemu-img", "create", "-q", "-f", "qcow2", image, "16M");
        await NbdServer.RunToolAsync("qemu-img", "bitmap", "--add", "--enable", image, "bm");
        await NbdServer.RunToolAsync("qemu-io", "-c", "write -P 0xab 1M 64k", "-c", "write -P 0xcd 5M 128k", image);
        _server = await NbdServer.StartAsync("qemu-nbd", _directory.File("nbd.sock"),
            "--persistent", "--format=qcow2", "-B", "bm", "-k", _directory.File("nbd.sock"), image);
    }

    public async Task DisposeAsync()
    {
        if (_server is not null)
        {
            await _server.DisposeAsync();
        }
    }

    /// <summary>Runs after <see cref="DisposeAsync"/> has stopped the server.</summary>
    public void Dispose() => _directory.Dispose();

    private Task<NbdClient> ConnectAsync() => NbdClient.ConnectAsync(Server.SocketPath, "",
        new NbdClientOptions { MetaContexts = { NbdMetaContexts.BaseAllocation, s_bitmap } });

    [Fact]
    public async Task Both_meta_contexts_are_negotiated_with_distinct_ids()
    {
        await using var client = await ConnectAsync();

        Assert.Equal(new[] { NbdMetaContexts.BaseAllocation, s_bitmap }, client.MetaContexts.Select(c => c.Name).Order(StringComparer.Ordinal));
        Assert.Equal(2, client.MetaContexts.Select(c => c.Id).Distinct().Count());
    }

    [Fact]
    public async Task Dirty_bitmap_reports_exactly_the_written_ranges()
    {
        await using var client = await ConnectAsync();

        var map = await TestData.MapAsync(client, s_bitmap);

        var dirty = map.Where(e => (e.Flags & NbdExtentFlags.Dirty) != 0).ToArray();
        Assert.Equal(new[] { new NbdExtent(1 * M, 64 * K, 1), new NbdExtent(5 * M, 128 * K, 1) }, dirty);
        Assert.Equal(ImageSize, map.Sum(e => e.Length));
    }

    [Fact]
    public async Task Base_allocation_reports_holes_and_data()
    {
        await using var client = await ConnectAsync();

        var map = await TestData.MapAsync(client, NbdMetaContexts.BaseAllocation);

        const uint HoleZero = NbdExtentFlags.Hole | NbdExtentFlags.Zero;
        Assert.Equal(
            new[]
            {
                new NbdExtent(0, 1 * M, HoleZero),
                new NbdExtent(1 * M, 64 * K, 0),
                new NbdExtent(1 * M + 64 * K, 4 * M - 64 * K, HoleZero),
                new NbdExtent(5 * M, 128 * K, 0),
                new NbdExtent(5 * M + 128 * K, ImageSize - 5 * M - 128 * K, HoleZero),
            },
            map);
    }

    [Fact]
    public async Task Block_status_for_a_sub_range_starts_at_the_requested_offset()
    {
        await using var client = await ConnectAsync();

        var extents = TestData.Coalesce(await client.GetBlockStatusAsync(s_bitmap, 1 * M + 4 * K, 60 * K));

        Assert.Equal(new NbdExtent(1 * M + 4 * K, 60 * K, NbdExtentFlags.Dirty), extents.Single());
    }

    [Fact]
    public async Task Reading_holes_returns_zeroes_and_data_returns_the_pattern()
    {
        await using var client = await ConnectAsync();
        var buffer = new byte[2 * M];
        buffer.AsSpan().Fill(0x5A);

        // [0, 2 MiB): hole, 64 KiB of 0xab, hole. qemu answers with OFFSET_HOLE chunks for the holes.
        await client.ReadAsync(0, buffer);

        Assert.True(buffer.AsSpan(0, (int)M).IndexOfAnyExcept((byte)0) < 0, "hole before the data is not zero");
        Assert.True(buffer.AsSpan((int)M, 64 * 1024).IndexOfAnyExcept((byte)0xab) < 0, "data is not the written pattern");
        Assert.True(buffer.AsSpan((int)(M + 64 * K)).IndexOfAnyExcept((byte)0) < 0, "hole after the data is not zero");
    }

    [Fact]
    public async Task Block_status_on_a_context_that_was_not_negotiated_is_rejected_client_side()
    {
        await using var client = await NbdClient.ConnectAsync(Server.SocketPath, "",
            new NbdClientOptions { MetaContexts = { NbdMetaContexts.BaseAllocation } });

        var error = await Assert.ThrowsAsync<ArgumentException>(() => client.GetBlockStatusAsync(s_bitmap, 0, M).AsTask());
        Assert.Contains("was not negotiated", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Multi_conn_client_uses_one_connection_when_multi_conn_is_not_advertised()
    {
        await using var group = await NbdMultiConnClient.ConnectAsync(Server.SocketPath, "", maxConnections: 4);

        // qemu-nbd with the default --shared=1 does not advertise multi-conn.
        Assert.False(group.Export.CanMultiConn);
        Assert.Single(group.Connections);
        var buffer = new byte[64 * 1024];
        await group.ReadAsync(1 * M, buffer);
        Assert.True(buffer.AsSpan().IndexOfAnyExcept((byte)0xab) < 0);
    }
}
