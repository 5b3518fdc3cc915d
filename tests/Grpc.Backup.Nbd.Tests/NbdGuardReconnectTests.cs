using System.Buffers.Binary;
using System.Net.Sockets;

namespace Grpc.Backup.Nbd.Tests;

/// <summary>
/// <see cref="NbdGuardOptions.UpstreamConnector"/> reaching the upstream again (a provider's restarted server): the guard
/// serves its clients only the export it first negotiated.
/// </summary>
public sealed class NbdGuardReconnectTests : IDisposable
{
    private const long M = 1024 * 1024;

    private readonly TestDirectory _directory = new();

    public void Dispose() => _directory.Dispose();

    [Fact]
    public async Task A_reconnected_upstream_of_another_size_is_refused_and_the_guard_goes_on_serving_the_first_export()
    {
        await using var same = await StartNbdkitAsync("same.sock", "size=1M");
        await using var resized = await StartNbdkitAsync("resized.sock", "size=2M");
        string upstream = same.SocketPath;
        await using var guard = await NbdGuard.StartAsync(new NbdGuardOptions
        {
            ExportName = "",
            UpstreamConnector = async token =>
            {
                var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
                await socket.ConnectAsync(new UnixDomainSocketEndPoint(Volatile.Read(ref upstream)), token);
                return socket;
            },
        });
        string guardSocket = _directory.File("guard.sock");
        guard.Listen(guardSocket);
        await using (var first = await NbdClient.ConnectAsync(guardSocket, "", new NbdClientOptions()))
        {
            Assert.Equal(M, first.Export.Size);
        }

        // The server comes back with another size: whatever it holds is not the data the clients were told about.
        Volatile.Write(ref upstream, resized.SocketPath);
        var refused = await Record.ExceptionAsync(() => NbdClient.ConnectAsync(guardSocket, "", new NbdClientOptions()));
        Assert.True(refused is IOException or SocketException, $"a client was served the resized export: {refused}");

        // The same export again: served, and its data is the pattern's (each 8-byte word holds its own offset).
        Volatile.Write(ref upstream, same.SocketPath);
        await using var again = await NbdClient.ConnectAsync(guardSocket, "", new NbdClientOptions());
        byte[] last = new byte[64 * 1024];
        await again.ReadAsync(M - last.Length, last);
        Assert.Equal((ulong)(M - 8), BinaryPrimitives.ReadUInt64BigEndian(last.AsSpan(last.Length - 8)));
    }

    private Task<NbdServer> StartNbdkitAsync(string name, string size)
    {
        string socket = _directory.File(name);
        return NbdServer.StartAsync("nbdkit", socket, ["--foreground", "--exit-with-parent", "-U", socket, "pattern", size]);
    }
}
