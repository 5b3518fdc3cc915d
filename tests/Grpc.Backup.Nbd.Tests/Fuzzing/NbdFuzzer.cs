using System.Net.Sockets;

namespace Grpc.Backup.Nbd.Tests.Fuzzing;

/// <summary>
/// A hostile provider as an NBD client of the guard, driven by one seed: option haggling (<c>.Handshake.cs</c>), then
/// random, malformed and flooding commands (<c>.Transmission.cs</c>), ended by a clean or abrupt close. Every reply it
/// gets is judged on the spot; the same seed replays the same case.
/// </summary>
internal sealed partial class NbdFuzzer
{
    /// <summary>Bound on one case; a guard that leaves the fuzzer waiting this long hangs.</summary>
    private static readonly TimeSpan s_caseBound = TimeSpan.FromSeconds(120);

    private readonly FuzzEnvironment _environment;
    private readonly Random _random;
    private readonly RawNbdClient _client;
    private readonly FuzzStats _stats;
    private readonly HashSet<ulong> _cookies = [];
    private bool _structured;
    private bool _noZeroes;
    private uint[] _contexts = [];

    private NbdFuzzer(FuzzEnvironment environment, Random random, RawNbdClient client, FuzzStats stats)
    {
        _environment = environment;
        _random = random;
        _client = client;
        _stats = stats;
    }

    private SnapshotModel Model => _environment.Model;

    /// <summary>
    /// Plays the case of <paramref name="seed"/>: one connection, or now and then two or three at once; throws when the
    /// guard broke the protocol or hung.
    /// </summary>
    public static async Task RunCaseAsync(FuzzEnvironment environment, int seed, FuzzStats stats)
    {
        var random = new Random(seed);
        var connections = random.Next(10) == 0 ? random.Next(2, 4) : 1;
        environment.AllowConnections(connections);
        if (connections == 1)
        {
            await RunConnectionAsync(environment, random, stats);
            return;
        }

        var seeds = Enumerable.Range(0, connections).Select(_ => random.Next()).ToArray();
        await Task.WhenAll(seeds.Select(s => Task.Run(() => RunConnectionAsync(environment, new Random(s), stats))));
    }

    private static async Task RunConnectionAsync(FuzzEnvironment environment, Random random, FuzzStats stats)
    {
        Socket socket;
        if (random.Next(4) == 0)
        {
            socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
            await socket.ConnectAsync(new UnixDomainSocketEndPoint(environment.GuardSocketPath));
        }
        else
        {
            socket = await environment.Guard.ConnectAsync();
        }

        using var client = new RawNbdClient(socket);
        using var bound = new CancellationTokenSource(s_caseBound);

        // A hang becomes the end of the stream for whatever waits, and the case fails as a hang.
        using var registration = bound.Token.Register(client.Shutdown);
        var fuzzer = new NbdFuzzer(environment, random, client, stats);
        try
        {
            if (await fuzzer.HandshakeAsync())
            {
                stats.Transmission();
                await fuzzer.TransmitAsync();
            }
        }
        catch (Exception ex) when (bound.IsCancellationRequested)
        {
            throw new FuzzViolation($"the guard left the client waiting for {s_caseBound.TotalSeconds} s", ex);
        }
    }

    /// <summary>Waits for the guard to end the connection; anything it still sends is a violation.</summary>
    private async Task ExpectClosedAsync(string why)
    {
        bool closed;
        try
        {
            closed = await _client.IsClosedAsync();
        }
        catch (ObjectDisposedException)
        {
            closed = true;
        }

        if (!closed)
        {
            throw new FuzzViolation($"the guard sent more after {why}; it must close the connection");
        }

        _stats.ClosedByGuard();
    }

    /// <summary>Sends what the guard may rightly refuse to read by closing the connection first.</summary>
    private async Task SendUnlessClosedAsync(byte[] data)
    {
        try
        {
            await _client.SendAllAsync(data, default);
        }
        catch (SocketException ex) when (ex.SocketErrorCode is SocketError.Shutdown or SocketError.ConnectionReset or SocketError.ConnectionAborted)
        {
        }
    }

    private ulong NewCookie()
    {
        while (true)
        {
            var cookie = (ulong)_random.NextInt64() ^ ((ulong)_random.Next(2) << 63);
            if (_cookies.Add(cookie))
            {
                return cookie;
            }
        }
    }

    private byte[] RandomBytes(int length)
    {
        var bytes = new byte[length];
        _random.NextBytes(bytes);
        return bytes;
    }

    /// <summary>True with probability <paramref name="percent"/>%.</summary>
    private bool Chance(int percent) => _random.Next(100) < percent;
}
