using System.Net.Sockets;
using Grpc.Backup.Host;
using Grpc.Backup.Tests.Infrastructure;

namespace Grpc.Backup.Tests;

/// <summary>
/// A provider whose sideband accepts the connection but never greets it must not hold the host: the wait for HELLO
/// holds the lock that serialises the job's other guests, so it is bounded and the lock is released.
/// </summary>
public sealed class SidebandBoundsTests
{
    [Fact]
    public async Task A_sideband_that_never_sends_hello_fails_within_the_bound_and_frees_the_next_caller()
    {
        await using var provider = await InProcessProvider.StartAsync(_ => { });
        // The hostile sideband, in place of the provider's own: bound and listening, so the kernel completes
        // connect(2), but nothing ever answers.
        File.Delete(provider.Endpoint.SidebandPath);
        using var silent = new Socket(AddressFamily.Unix, SocketType.Seqpacket, ProtocolType.Unspecified);
        silent.Bind(new UnixDomainSocketEndPoint(provider.Endpoint.SidebandPath));
        silent.Listen(8);
        var options = new ProviderConnectionOptions { SidebandTimeout = TimeSpan.FromSeconds(1) };
        await using var connection = await ProviderConnection.ConnectAsync(provider.Endpoint, options);

        var first = await Assert.ThrowsAsync<IOException>(() => connection.GetFdChannelAsync(CancellationToken.None));
        // A second caller is not stuck behind the first one's lock: it gets the same bounded failure.
        var second = await Assert.ThrowsAsync<IOException>(() => connection.GetFdChannelAsync(CancellationToken.None));

        Assert.Contains("no HELLO within 1 s", first.Message, StringComparison.Ordinal);
        Assert.Contains("no HELLO within 1 s", second.Message, StringComparison.Ordinal);
    }
}
