using System.Net.Sockets;

namespace Grpc.Backup.Nbd.Tests;

/// <summary>
/// Ways of connecting (socket path, URI, an already connected socket as received by fd passing)
/// and handshake errors from a real qemu-nbd.
/// </summary>
public sealed class ConnectionTests : IAsyncLifetime, IDisposable
{
    private const int ImageSize = 4 * 1024 * 1024;

    private readonly TestDirectory _directory = new();
    private NbdServer? _server;

    private string ImagePath => _directory.File("disk.raw");

    private NbdServer Server => _server!;

    public async Task InitializeAsync()
    {
        await File.WriteAllBytesAsync(ImagePath, TestData.Random(ImageSize, seed: 41));
        _server = await NbdServer.StartAsync("qemu-nbd", _directory.File("nbd.sock"),
            "--persistent", "--shared=4", "--format=raw", "--export-name=disk0", "-k", _directory.File("nbd.sock"), ImagePath);
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
    public async Task Handshake_runs_on_an_already_connected_socket_and_the_client_owns_it()
    {
        var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        await socket.ConnectAsync(new UnixDomainSocketEndPoint(Server.SocketPath));

        var client = await NbdClient.ConnectAsync(socket, "disk0", new NbdClientOptions(), CancellationToken.None);
        var image = new byte[ImageSize];
        await client.ReadAsync(0, image);
        await client.DisposeAsync();

        Assert.Equal(await TestData.Sha256OfFileAsync(ImagePath), TestData.Sha256(image));
        Assert.True(socket.SafeHandle.IsClosed, "disposing the client must close the socket it took over");
    }

    [Fact]
    public async Task Handshake_runs_on_a_socket_wrapped_from_a_raw_descriptor()
    {
        // What a provider does with a descriptor received over SCM_RIGHTS: wrap the raw fd.
        using var original = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        await original.ConnectAsync(new UnixDomainSocketEndPoint(Server.SocketPath));
        var wrapped = new Socket(new SafeSocketHandle(original.SafeHandle.DangerousGetHandle(), ownsHandle: false));

        await using var client = await NbdClient.ConnectAsync(wrapped, "disk0");
        var head = new byte[65536];
        await client.ReadAsync(0, head);

        Assert.Equal(TestData.ReadAt(ImagePath, 0, head.Length), head);
    }

    [Fact]
    public async Task Failed_handshake_disposes_the_handed_over_socket()
    {
        var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        await socket.ConnectAsync(new UnixDomainSocketEndPoint(Server.SocketPath));

        await Assert.ThrowsAsync<NbdHandshakeException>(() => NbdClient.ConnectAsync(socket, "missing"));

        Assert.True(socket.SafeHandle.IsClosed);
    }

    [Fact]
    public async Task Connects_from_an_nbd_unix_uri()
    {
        var uri = NbdUri.Parse($"nbd+unix:///disk0?socket={Server.SocketPath}");

        await using var client = await NbdClient.ConnectAsync(uri);

        Assert.Equal(ImageSize, client.Export.Size);
    }

    [Fact]
    public async Task Nonexistent_export_gives_a_clear_error()
    {
        var error = await Assert.ThrowsAsync<NbdHandshakeException>(() => NbdClient.ConnectAsync(Server.SocketPath, "x"));

        Assert.Equal(NbdOptionError.UnknownExport, error.OptionError);
        Assert.StartsWith("Export 'x' not found on server", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Nonexistent_export_is_reported_even_when_meta_contexts_are_negotiated_first()
    {
        var error = await Assert.ThrowsAsync<NbdHandshakeException>(() => NbdClient.ConnectAsync(Server.SocketPath, "x",
            new NbdClientOptions { MetaContexts = { NbdMetaContexts.BaseAllocation } }));

        Assert.Contains("Export 'x' not found on server", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Unknown_meta_context_is_reported()
    {
        var error = await Assert.ThrowsAsync<NbdHandshakeException>(() => NbdClient.ConnectAsync(Server.SocketPath, "disk0",
            new NbdClientOptions { MetaContexts = { NbdMetaContexts.BaseAllocation, "qemu:dirty-bitmap:bm" } }));

        Assert.Contains("does not support meta context qemu:dirty-bitmap:bm", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Optional_meta_contexts_may_be_missing()
    {
        await using var client = await NbdClient.ConnectAsync(Server.SocketPath, "disk0", new NbdClientOptions
        {
            MetaContexts = { NbdMetaContexts.BaseAllocation, "qemu:dirty-bitmap:bm" },
            RequireMetaContexts = false,
        });

        Assert.Equal(NbdMetaContexts.BaseAllocation, client.MetaContexts.Single().Name);
    }

    [Fact]
    public async Task Reads_beyond_the_end_are_rejected_client_side_without_breaking_the_connection()
    {
        await using var client = await NbdClient.ConnectAsync(Server.SocketPath, "disk0");

        await Assert.ThrowsAsync<ArgumentOutOfRangeException>(() => client.ReadAsync(ImageSize - 100, new byte[101]).AsTask());
        await Assert.ThrowsAsync<ArgumentOutOfRangeException>(() => client.ReadAsync(ImageSize + 1, Memory<byte>.Empty).AsTask());
        await Assert.ThrowsAsync<ArgumentOutOfRangeException>(() => client.ReadAsync(-1, new byte[1]).AsTask());

        var tail = new byte[100];
        await client.ReadAsync(ImageSize - 100, tail);
        Assert.Equal(TestData.ReadAt(ImagePath, ImageSize - 100, 100), tail);
    }

    [Fact]
    public async Task Missing_socket_path_gives_an_io_error_naming_the_path()
    {
        var path = _directory.File("absent.sock");

        var error = await Assert.ThrowsAsync<IOException>(() => NbdClient.ConnectAsync(path, ""));

        Assert.Contains(path, error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Operations_after_dispose_throw_object_disposed()
    {
        var client = await NbdClient.ConnectAsync(Server.SocketPath, "disk0");
        await client.DisposeAsync();

        Assert.False(client.IsConnected);
        await Assert.ThrowsAsync<ObjectDisposedException>(() => client.ReadAsync(0, new byte[10]).AsTask());
    }
}
