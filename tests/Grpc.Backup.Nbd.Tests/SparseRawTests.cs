namespace Grpc.Backup.Nbd.Tests;

/// <summary>base:allocation on a sparse raw file, and zero-filled reads of its holes.</summary>
public sealed class SparseRawTests : IAsyncLifetime, IDisposable
{
    private const long M = 1024 * 1024;
    private const long ImageSize = 16 * M;

    private readonly TestDirectory _directory = new();
    private readonly byte[] _data = TestData.Random((int)M, seed: 11);
    private NbdServer? _server;

    public async Task InitializeAsync()
    {
        var image = _directory.File("sparse.raw");
        TestData.CreateSparse(image, ImageSize);
        TestData.WriteAt(image, 2 * M, _data);
        _server = await NbdServer.StartAsync("qemu-nbd", _directory.File("nbd.sock"),
            "--persistent", "--read-only", "--format=raw", "-k", _directory.File("nbd.sock"), image);
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
    public async Task Base_allocation_reports_the_single_data_range()
    {
        await using var client = await NbdClient.ConnectAsync(_server!.SocketPath, "",
            new NbdClientOptions { MetaContexts = { NbdMetaContexts.BaseAllocation } });

        var map = await TestData.MapAsync(client, NbdMetaContexts.BaseAllocation);

        const uint HoleZero = NbdExtentFlags.Hole | NbdExtentFlags.Zero;
        Assert.Equal(
            new[]
            {
                new NbdExtent(0, 2 * M, HoleZero),
                new NbdExtent(2 * M, M, 0),
                new NbdExtent(3 * M, ImageSize - 3 * M, HoleZero),
            },
            map);
    }

    [Fact]
    public async Task Reads_fill_holes_with_zeroes()
    {
        await using var client = await NbdClient.ConnectAsync(_server!.SocketPath, "");
        var image = new byte[ImageSize];
        image.AsSpan().Fill(0xFF);

        await client.ReadAsync(0, image);

        var expected = new byte[ImageSize];
        _data.CopyTo(expected, 2 * M);
        Assert.Equal(TestData.Sha256(expected), TestData.Sha256(image));
    }

    [Fact]
    public async Task Read_only_export_rejects_writes_client_side()
    {
        await using var client = await NbdClient.ConnectAsync(_server!.SocketPath, "");

        Assert.True(client.Export.IsReadOnly);
        await Assert.ThrowsAsync<NotSupportedException>(() => client.WriteAsync(0, new byte[512]).AsTask());
        await Assert.ThrowsAsync<NotSupportedException>(() => client.TrimAsync(0, 512).AsTask());
    }
}
