namespace Grpc.Backup.Nbd.Tests;

/// <summary>qemu-nbd serving a raw file: data path, flush, trim and write-zeroes verified through the file.</summary>
public sealed class QemuNbdRawTests : IAsyncLifetime, IDisposable
{
    private const int ImageSize = 16 * 1024 * 1024;

    private readonly TestDirectory _directory = new();
    private NbdServer? _server;

    private string ImagePath => _directory.File("disk.raw");

    private NbdServer Server => _server!;

    public async Task InitializeAsync()
    {
        // Random data everywhere except a hole at [8 MiB, 10 MiB).
        TestData.CreateSparse(ImagePath, ImageSize);
        TestData.WriteAt(ImagePath, 0, TestData.Random(8 * 1024 * 1024, seed: 1));
        TestData.WriteAt(ImagePath, 10 * 1024 * 1024, TestData.Random(6 * 1024 * 1024, seed: 2));
        _server = await NbdServer.StartAsync("qemu-nbd", _directory.File("nbd.sock"),
            "--persistent", "--shared=8", "--format=raw", "--discard=unmap", "-k", _directory.File("nbd.sock"), ImagePath);
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

    [Fact]
    public async Task Handshake_reports_export_properties()
    {
        await using var client = await NbdClient.ConnectAsync(Server.SocketPath, "");

        Assert.Equal(ImageSize, client.Export.Size);
        Assert.True(client.StructuredReplies);
        Assert.False(client.Export.IsReadOnly);
        Assert.True(client.Export.CanFlush);
        Assert.True(client.Export.CanTrim);
        Assert.True(client.Export.CanWriteZeroes);
        Assert.Equal(32u * 1024 * 1024, client.Export.BlockSize.Maximum);
        Assert.Empty(client.MetaContexts);
    }

    [Fact]
    public async Task Reading_the_whole_image_matches_the_file_checksum()
    {
        await using var client = await NbdClient.ConnectAsync(Server.SocketPath, "");
        var image = new byte[ImageSize];

        // One call larger than MaxRequestSize: split into pipelined requests.
        await client.ReadAsync(0, image);

        Assert.Equal(await TestData.Sha256OfFileAsync(ImagePath), TestData.Sha256(image));
    }

    [Fact]
    public async Task Many_concurrent_unaligned_reads_return_the_right_bytes()
    {
        await using var client = await NbdClient.ConnectAsync(Server.SocketPath, "");
        var file = await File.ReadAllBytesAsync(ImagePath);
        var random = new Random(7);
        var ranges = Enumerable.Range(0, 200)
            .Select(_ => (Offset: (long)random.Next(0, ImageSize - 300_000), Length: random.Next(1, 300_000)))
            .ToArray();

        var buffers = ranges.Select(r => new byte[r.Length]).ToArray();
        await Task.WhenAll(ranges.Select((r, i) => client.ReadAsync(r.Offset, buffers[i]).AsTask()));

        for (var i = 0; i < ranges.Length; i++)
        {
            Assert.True(file.AsSpan((int)ranges[i].Offset, ranges[i].Length).SequenceEqual(buffers[i]), $"range {i} differs");
        }
    }

    [Fact]
    public async Task Write_and_flush_reach_the_file()
    {
        var data = TestData.Random(3 * 1024 * 1024 + 17, seed: 3);
        const long offset = 1024 * 1024 + 5;
        await using (var client = await NbdClient.ConnectAsync(Server.SocketPath, ""))
        {
            await client.WriteAsync(offset, data);
            await client.FlushAsync();

            var readBack = new byte[data.Length];
            await client.ReadAsync(offset, readBack);
            Assert.Equal(TestData.Sha256(data), TestData.Sha256(readBack));
        }

        Assert.Equal(TestData.Sha256(data), TestData.Sha256(TestData.ReadAt(ImagePath, offset, data.Length)));
    }

    [Fact]
    public async Task Trim_discards_the_range()
    {
        await using var client = await NbdClient.ConnectAsync(Server.SocketPath, "",
            new NbdClientOptions { MetaContexts = { NbdMetaContexts.BaseAllocation } });
        Assert.NotEqual(new byte[4096], TestData.ReadAt(ImagePath, 4 * 1024 * 1024, 4096));

        await client.TrimAsync(4 * 1024 * 1024, 1024 * 1024);
        await client.FlushAsync();

        // qemu-nbd --discard=unmap punches a hole in the raw file: it reads back as zeroes and
        // block status now reports it as a hole.
        Assert.Equal(new byte[1024 * 1024], TestData.ReadAt(ImagePath, 4 * 1024 * 1024, 1024 * 1024));
        var extents = await client.GetBlockStatusAsync(NbdMetaContexts.BaseAllocation, 4 * 1024 * 1024, 1024 * 1024);
        Assert.Equal(new NbdExtent(4 * 1024 * 1024, 1024 * 1024, NbdExtentFlags.Hole | NbdExtentFlags.Zero), TestData.Coalesce(extents).Single());
    }

    [Theory]
    [InlineData(NbdCommandFlags.None)]
    [InlineData(NbdCommandFlags.NoHole)]
    public async Task Write_zeroes_zeroes_the_range(NbdCommandFlags flags)
    {
        const long offset = 2 * 1024 * 1024 + 512;
        const int length = 3 * 1024 * 1024;
        await using (var client = await NbdClient.ConnectAsync(Server.SocketPath, ""))
        {
            await client.WriteZeroesAsync(offset, length, flags);
            await client.FlushAsync();

            var readBack = new byte[length];
            readBack.AsSpan().Fill(0xEE);
            await client.ReadAsync(offset, readBack);
            Assert.Equal(new byte[length], readBack);
        }

        Assert.Equal(new byte[length], TestData.ReadAt(ImagePath, offset, length));

        // The bytes right around the zeroed range are untouched.
        var original = TestData.Random(8 * 1024 * 1024, seed: 1);
        Assert.Equal(original[(int)offset - 1], TestData.ReadAt(ImagePath, offset - 1, 1)[0]);
        Assert.Equal(original[(int)offset + length], TestData.ReadAt(ImagePath, offset + length, 1)[0]);
    }

    [Fact]
    public async Task Simple_replies_work_when_structured_replies_are_disabled()
    {
        await using var client = await NbdClient.ConnectAsync(Server.SocketPath, "",
            new NbdClientOptions { RequestStructuredReplies = false });
        Assert.False(client.StructuredReplies);

        var data = TestData.Random(100_000, seed: 4);
        await client.WriteAsync(12_345, data);
        var image = new byte[ImageSize];
        await client.ReadAsync(0, image);

        var expected = await File.ReadAllBytesAsync(ImagePath);
        Assert.Equal(TestData.Sha256(expected), TestData.Sha256(image));
        Assert.True(image.AsSpan(12_345, data.Length).SequenceEqual(data));
    }

    [Fact]
    public async Task Multi_conn_reader_reads_the_image_over_several_connections()
    {
        await using var group = await NbdMultiConnClient.ConnectAsync(Server.SocketPath, "", maxConnections: 4,
            new NbdClientOptions { MaxRequestSize = 1024 * 1024 });

        // qemu-nbd advertises multi-conn when started with --shared > 1.
        Assert.True(group.Export.CanMultiConn);
        Assert.Equal(4, group.Connections.Count);
        var image = new byte[ImageSize];
        await group.ReadAsync(0, image);
        Assert.Equal(await TestData.Sha256OfFileAsync(ImagePath), TestData.Sha256(image));
    }
}
