namespace Grpc.Backup.Nbd.Tests;

/// <summary>nbdkit: handshake, data path, multi-conn reading, and server-reported command errors.</summary>
public sealed class NbdkitTests : IAsyncLifetime, IDisposable
{
    private const int M = 1024 * 1024;

    private readonly TestDirectory _directory = new();
    private readonly List<NbdServer> _servers = [];

    public Task InitializeAsync() => Task.CompletedTask;

    public async Task DisposeAsync()
    {
        foreach (var server in _servers)
        {
            await server.DisposeAsync();
        }
    }

    /// <summary>Runs after <see cref="DisposeAsync"/> has stopped the server.</summary>
    public void Dispose() => _directory.Dispose();

    private async Task<NbdServer> StartAsync(params string[] pluginArguments)
    {
        var socket = _directory.File($"nbdkit{_servers.Count}.sock");
        var server = await NbdServer.StartAsync("nbdkit", socket, ["--foreground", "--exit-with-parent", "-U", socket, .. pluginArguments]);
        _servers.Add(server);
        return server;
    }

    [Fact]
    public async Task Memory_plugin_round_trips_data()
    {
        var server = await StartAsync("memory", "64M");
        await using var client = await NbdClient.ConnectAsync(server.SocketPath, "");
        Assert.Equal(64L * M, client.Export.Size);
        Assert.True(client.Export.CanMultiConn);

        var data = TestData.Random(10 * M + 3, seed: 21);
        await client.WriteAsync(7 * M + 1, data);
        await client.FlushAsync();
        var readBack = new byte[data.Length];
        await client.ReadAsync(7 * M + 1, readBack);

        Assert.Equal(TestData.Sha256(data), TestData.Sha256(readBack));
    }

    [Fact]
    public async Task Multi_conn_client_writes_and_reads_the_whole_disk_over_several_connections()
    {
        var server = await StartAsync("memory", "64M");
        await using var group = await NbdMultiConnClient.ConnectAsync(server.SocketPath, "", maxConnections: 4);
        Assert.Equal(4, group.Connections.Count);

        var image = TestData.Random(64 * M, seed: 22);
        await group.WriteAsync(0, image);
        await group.FlushAsync();

        var readBack = new byte[image.Length];
        await group.ReadAsync(0, readBack);
        Assert.Equal(TestData.Sha256(image), TestData.Sha256(readBack));

        // Every connection sees the data written through the others.
        foreach (var connection in group.Connections)
        {
            var probe = new byte[4096];
            await connection.ReadAsync(33 * M, probe);
            Assert.True(image.AsSpan(33 * M, 4096).SequenceEqual(probe));
        }
    }

    [Fact]
    public async Task File_plugin_serves_the_file_to_a_multi_conn_reader()
    {
        var path = _directory.File("disk.img");
        var image = TestData.Random(24 * M, seed: 23);
        await File.WriteAllBytesAsync(path, image);
        var server = await StartAsync("file", path);

        await using var group = await NbdMultiConnClient.ConnectAsync(server.Uri(), maxConnections: 3);
        Assert.Equal(3, group.Connections.Count);

        // Read like a copier: fixed-size chunks, several in flight, spread over the connections.
        var readBack = new byte[image.Length];
        var chunks = Enumerable.Range(0, image.Length / M)
            .Select(i => group.ReadAsync((long)i * M, readBack.AsMemory(i * M, M)).AsTask());
        await Task.WhenAll(chunks);

        Assert.Equal(await TestData.Sha256OfFileAsync(path), TestData.Sha256(readBack));
    }

    [Fact]
    public async Task Read_error_is_reported_as_a_typed_read_exception_and_the_connection_survives()
    {
        var server = await StartAsync("--filter=error", "memory", "1M", "error-pread=EIO", "error-pread-rate=100%");
        await using var client = await NbdClient.ConnectAsync(server.SocketPath, "");

        var error = await Assert.ThrowsAsync<NbdException>(() => client.ReadAsync(4096, new byte[8192]).AsTask());

        Assert.True(error.IsReadError);
        Assert.Equal(NbdCommand.Read, error.Command);
        Assert.Equal(NbdError.IOError, error.Error);
        Assert.Equal(5, error.Errno);
        Assert.Equal("EIO", error.ErrorName);
        Assert.Equal(4096, error.Offset);
        Assert.Equal(8192, error.Length);
        Assert.Contains("READ", error.Message, StringComparison.Ordinal);

        // A command error leaves the connection usable.
        await client.WriteAsync(0, new byte[] { 1, 2, 3 });
        Assert.True(client.IsConnected);
    }

    [Fact]
    public async Task Write_error_carries_the_server_errno()
    {
        var server = await StartAsync("--filter=error", "memory", "1M", "error-pwrite=ENOSPC", "error-pwrite-rate=100%");
        await using var client = await NbdClient.ConnectAsync(server.SocketPath, "");

        var error = await Assert.ThrowsAsync<NbdException>(() => client.WriteAsync(512, new byte[1024]).AsTask());

        Assert.False(error.IsReadError);
        Assert.Equal(NbdCommand.Write, error.Command);
        Assert.Equal(NbdError.NoSpace, error.Error);
        Assert.Equal(512, error.Offset);
    }

    [Fact]
    public async Task Read_only_server_is_reported_read_only()
    {
        var server = await StartAsync("--readonly", "memory", "1M");
        await using var client = await NbdClient.ConnectAsync(server.SocketPath, "");

        Assert.True(client.Export.IsReadOnly);
        await Assert.ThrowsAsync<NotSupportedException>(() => client.WriteAsync(0, new byte[1]).AsTask());
    }

    [Fact]
    public async Task Zeroing_and_trimming_more_than_4_GiB_is_split_into_valid_requests()
    {
        var server = await StartAsync("memory", "6G");
        await using var client = await NbdClient.ConnectAsync(server.SocketPath, "");
        var marker = TestData.Random(4096, seed: 24);
        const long Far = 5L * 1024 * M + 12_345;

        await client.WriteAsync(Far, marker);
        await client.WriteAsync(100, marker);
        await client.WriteZeroesAsync(0, 5L * 1024 * M);
        var readBack = new byte[4096];
        await client.ReadAsync(Far, readBack);
        Assert.Equal(marker, readBack);
        await client.ReadAsync(100, readBack);
        Assert.Equal(new byte[4096], readBack);

        // The memory plugin really discards trimmed ranges, which then read as zeroes.
        await client.TrimAsync(0, client.Export.Size);
        await client.ReadAsync(Far, readBack);
        Assert.Equal(new byte[4096], readBack);
    }

    [Fact]
    public async Task Fua_writes_are_accepted_when_advertised()
    {
        var server = await StartAsync("memory", "1M");
        await using var client = await NbdClient.ConnectAsync(server.SocketPath, "");
        Assert.True(client.Export.CanFua);

        await client.WriteAsync(0, new byte[] { 42 }, NbdCommandFlags.Fua);
        var readBack = new byte[1];
        await client.ReadAsync(0, readBack);

        Assert.Equal(42, readBack[0]);
        await Assert.ThrowsAsync<ArgumentException>(() => client.WriteAsync(0, new byte[1], NbdCommandFlags.NoHole).AsTask());
    }

    [Fact]
    public async Task Racing_cancellations_never_corrupt_or_leak_requests()
    {
        var server = await StartAsync("--filter=delay", "memory", "16M", "delay-read=2ms");
        await using var client = await NbdClient.ConnectAsync(server.SocketPath, "", new NbdClientOptions { MaxInFlightRequests = 16 });
        var image = TestData.Random(16 * M, seed: 25);
        await client.WriteAsync(0, image);

        // A known subset is cancelled: a quarter before the request is sent, a quarter at a random moment while it may
        // be in flight (the race), and half never. Only the racing quarter's outcome depends on timing, and nothing is
        // asserted about it but the invariants: right data or a cancellation, never wrong data, never a leaked slot.
        var random = new Random(26);
        int preCancelled = 0, neverCancelledCompleted = 0;
        var operations = Enumerable.Range(0, 400).Select(async i =>
        {
            var offset = random.Next(0, 15 * M);
            var buffer = new byte[random.Next(1, 256 * 1024)];
            using var cts = new CancellationTokenSource();
            switch (i % 4)
            {
                case 0:
                    cts.Cancel();
                    break;
                case 1:
                    cts.CancelAfter(random.Next(0, 20));
                    break;
            }
            try
            {
                await client.ReadAsync(offset, buffer, cts.Token);
                Assert.True(image.AsSpan(offset, buffer.Length).SequenceEqual(buffer), $"read {i} returned wrong data");
                Assert.NotEqual(0, i % 4);
                if (i % 4 >= 2)
                {
                    Interlocked.Increment(ref neverCancelledCompleted);
                }
            }
            catch (OperationCanceledException)
            {
                Assert.True(i % 4 <= 1, $"read {i} was never cancelled but ended cancelled");
                if (i % 4 == 0)
                {
                    Interlocked.Increment(ref preCancelled);
                }
            }
        }).ToArray();
        await Task.WhenAll(operations);

        Assert.Equal(100, preCancelled);
        Assert.Equal(200, neverCancelledCompleted);
        Assert.True(client.IsConnected);

        // Abandoned requests give their slots back once the server's late replies are drained.
        var clock = System.Diagnostics.Stopwatch.StartNew();
        while (client.InFlightRequests != 0 && clock.Elapsed < TimeSpan.FromSeconds(120))
        {
            await Task.Delay(10);
        }

        Assert.Equal(0, client.InFlightRequests);
        var all = new byte[16 * M];
        await client.ReadAsync(0, all);
        Assert.Equal(TestData.Sha256(image), TestData.Sha256(all));
    }
}
