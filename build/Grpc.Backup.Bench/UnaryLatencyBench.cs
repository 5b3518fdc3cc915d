using System.Net.Sockets;
using Grpc.Backup.Host;
using Grpc.Backup.Protocol;
using Grpc.Backup.Protocol.V1;
using Grpc.Net.Client;

namespace Grpc.Backup.Bench;

/// <summary>
/// Unary RPC latency over the provider's Unix socket: GetProviderInfo through the host client (deadline, retry and
/// circuit-breaker interceptors) against a bare grpc-dotnet channel on the same socket, interleaved in rounds so both
/// see the same machine state.
/// </summary>
internal static class UnaryLatencyBench
{
    public static async Task<IReadOnlyList<BenchResult>> RunAsync(ProviderEndpoint endpoint, int callsPerRound, int rounds)
    {
        await using var ours = await ProviderConnection.ConnectAsync(endpoint);
        using var peerChannel = GrpcChannel.ForAddress("http://localhost", new GrpcChannelOptions
        {
            HttpHandler = new SocketsHttpHandler
            {
                ConnectCallback = async (_, ct) =>
                {
                    var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
                    await socket.ConnectAsync(new UnixDomainSocketEndPoint(endpoint.SocketPath), ct);
                    return new NetworkStream(socket, ownsSocket: true);
                },
            },
        });
        var peer = new Identity.IdentityClient(peerChannel);
        var request = new GetProviderInfoRequest();
        var oursP50 = new List<double>();
        var oursP99 = new List<double>();
        var peerP50 = new List<double>();
        var peerP99 = new List<double>();
        for (int round = 0; round < rounds; round++)
        {
            // Alternate who goes first, so neither side always runs on a warmer or colder machine.
            Func<Task<LatencySample>> measureOurs = () => LatencySample.MeasureAsync(async () => await ours.Identity.GetProviderInfoAsync(request), callsPerRound / 2, callsPerRound);
            Func<Task<LatencySample>> measurePeer = () => LatencySample.MeasureAsync(async () => await peer.GetProviderInfoAsync(request), callsPerRound / 2, callsPerRound);
            LatencySample a, b;
            if (round % 2 == 0)
            {
                a = await measureOurs();
                b = await measurePeer();
            }
            else
            {
                b = await measurePeer();
                a = await measureOurs();
            }
            oursP50.Add(a.Percentile(50));
            oursP99.Add(a.Percentile(99));
            peerP50.Add(b.Percentile(50));
            peerP99.Add(b.Percentile(99));
        }
        const string peerName = "grpc-dotnet bare channel";
        string notes = $"{rounds} rounds x {callsPerRound} sequential GetProviderInfo calls, median of rounds";
        return
        [
            new BenchResult("unary-uds-p50", LatencySample.Median(oursP50), peerName, LatencySample.Median(peerP50), notes),
            new BenchResult("unary-uds-p99", LatencySample.Median(oursP99), peerName, LatencySample.Median(peerP99), notes),
        ];
    }
}
