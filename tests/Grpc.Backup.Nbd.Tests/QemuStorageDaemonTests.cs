namespace Grpc.Backup.Nbd.Tests;

/// <summary>qemu-storage-daemon's built-in NBD server with a named, writable export.</summary>
public sealed class QemuStorageDaemonTests : IAsyncLifetime, IDisposable
{
    private const int M = 1024 * 1024;

    private readonly TestDirectory _directory = new();
    private NbdServer? _server;

    private string ImagePath => _directory.File("disk.raw");

    private NbdServer Server => _server!;

    public async Task InitializeAsync()
    {
        await File.WriteAllBytesAsync(ImagePath, TestData.Random(8 * M, seed: 31));
        var socket = _directory.File("qsd.sock");
        _server = await NbdServer.StartAsync("qemu-storage-daemon", socket,
            "--blockdev", $"driver=file,node-name=f0,filename={ImagePath}",
            "--nbd-server", $"addr.type=unix,addr.path={socket}",
            "--export", "type=nbd,id=e0,node-name=f0,name=disk0,writable=on");
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
    public async Task Named_export_reads_writes_and_flushes()
    {
        await using var client = await NbdClient.ConnectAsync(Server.Uri("disk0"));
        Assert.Equal("disk0", client.Export.Name);
        Assert.Equal(8L * M, client.Export.Size);

        var image = new byte[8 * M];
        await client.ReadAsync(0, image);
        Assert.Equal(await TestData.Sha256OfFileAsync(ImagePath), TestData.Sha256(image));

        var data = TestData.Random(M, seed: 32);
        await client.WriteAsync(3 * M, data);
        await client.FlushAsync();
        Assert.Equal(TestData.Sha256(data), TestData.Sha256(TestData.ReadAt(ImagePath, 3 * M, M)));
    }

    [Fact]
    public async Task Multi_conn_reader_uses_several_connections()
    {
        await using var group = await NbdMultiConnClient.ConnectAsync(Server.SocketPath, "disk0", maxConnections: 4,
            new NbdClientOptions { MaxRequestSize = 512 * 1024 });
        Assert.True(group.Export.CanMultiConn);
        Assert.Equal(4, group.Connections.Count);

        var image = new byte[8 * M];
        await group.ReadAsync(0, image);

        Assert.Equal(await TestData.Sha256OfFileAsync(ImagePath), TestData.Sha256(image));
    }

    [Fact]
    public async Task Unknown_export_name_fails_with_a_clear_message()
    {
        var error = await Assert.ThrowsAsync<NbdHandshakeException>(() => NbdClient.ConnectAsync(Server.SocketPath, "nope"));

        Assert.Equal(NbdOptionError.UnknownExport, error.OptionError);
        Assert.Contains("Export 'nope' not found on server", error.Message, StringComparison.Ordinal);
    }
}
