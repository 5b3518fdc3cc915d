using System.Diagnostics;

namespace Grpc.Backup.Nbd.Tests.Fuzzing;

/// <summary>
/// What the fuzzer attacks and the oracle that judges it: a real qemu-storage-daemon snapshot whose guest keeps writing,
/// a guard in front of it (handing out socket pairs and listening on a socket), and the snapshot's content at its
/// instant, read through the guard by a well-behaved client before the first case.
/// </summary>
internal sealed class FuzzEnvironment : IAsyncDisposable
{
    public const int Cluster = 64 * 1024;
    /// <summary>Not a whole number of clusters: the last, partial one is where rounding at the export's end goes wrong.</summary>
    public const int DiskSize = (16 * 1024 * 1024) + (3 * 4096);
    public const int DataSize = 8 * 1024 * 1024;

    /// <summary>Small limits, so floods and oversized requests reach them quickly.</summary>
    public const int MaxRequestSize = 4 * 1024 * 1024;

    public const int MaxBytesInFlight = 8 * 1024 * 1024;

    /// <summary>QEMU's growth allowed over an epoch (straight to QEMU, 16 uncollected 32 MiB reads grew it by ~350 MiB).</summary>
    private const long MaxQemuGrowth = 128L * 1024 * 1024;

    private static readonly TimeSpan s_bound = TimeSpan.FromSeconds(60);

    private readonly TestDirectory _directory;
    private readonly CbwSnapshotServer _server;
    private readonly GuestWriter _writer;
    private readonly CancellationTokenSource _stopSampler = new();
    private readonly Task _sampler;
    private long _maxBytesInFlight;
    private long _allowedInFlight = MaxBytesInFlight;
    private long _overCap;
    private long _qemuBaseline;
    private bool _disposed;

    private FuzzEnvironment(TestDirectory directory, CbwSnapshotServer server, NbdGuard guard, GuestWriter writer, SnapshotModel model)
    {
        _directory = directory;
        _server = server;
        Guard = guard;
        _writer = writer;
        Model = model;
        GuardSocketPath = directory.File("guard.sock");
        guard.Listen(GuardSocketPath);
        _sampler = Task.Run(SampleAsync);
    }

    public NbdGuard Guard { get; }

    /// <summary>The guard's listening socket (nbdfuse's way in); the other way is <see cref="NbdGuard.ConnectAsync"/>.</summary>
    public string GuardSocketPath { get; }

    public SnapshotModel Model { get; }

    public NbdServer Qemu => _server.Qemu;

    /// <summary>The most bytes the guard held in flight, sampled all along.</summary>
    public long MaxBytesInFlightSeen => Interlocked.Read(ref _maxBytesInFlight);

    public long GuestWrites => _writer.Writes;

    /// <summary>A case about to open <paramref name="connections"/> at once: each may hold the cap.</summary>
    public void AllowConnections(int connections) => Interlocked.Exchange(ref _allowedInFlight, (long)MaxBytesInFlight * connections);

    public long QemuGrowth => ProcessStatus.RssBytes(Qemu.ProcessId) - _qemuBaseline;

    public static async Task<FuzzEnvironment> StartAsync(int seed)
    {
        var directory = new TestDirectory();
        var data = TestData.Random(DataSize, seed: 15);
        var content = new byte[DiskSize];
        data.CopyTo(content, 0);
        var server = await CbwSnapshotServer.StartAsync(directory, DiskSize, data);
        NbdGuard? guard = null;
        GuestWriter? writer = null;
        FuzzEnvironment? environment = null;
        try
        {
            guard = await server.StartGuardAsync(MaxBytesInFlight, MaxRequestSize);
            writer = await GuestWriter.StartAsync(server.Qemu.SocketPath, content, seed);
            environment = new FuzzEnvironment(directory, server, guard, writer, new SnapshotModel(content, Cluster));

            // The export before the fuzz, through the guard, while the guest writes: the content at the snapshot's instant.
            await environment.VerifyAsync(new Random(seed), full: true);
            environment._qemuBaseline = ProcessStatus.RssBytes(server.Qemu.ProcessId);
            return environment;
        }
        catch
        {
            if (environment is not null)
            {
                await environment.DisposeAsync();
                throw;
            }

            if (writer is not null)
            {
                await writer.DisposeAsync();
            }

            if (guard is not null)
            {
                await guard.DisposeAsync();
            }

            await server.DisposeAsync();
            directory.Dispose();
            throw;
        }
    }

    /// <summary>
    /// The oracle after a case: QEMU is up, the guest's writes succeed, no session outlives its client, the guard's
    /// bytes in flight stayed under its cap, and a fresh well-behaved client reads the snapshot's bytes (a random
    /// stretch, or every untrimmed cluster when <paramref name="full"/>).
    /// </summary>
    public async Task VerifyAsync(Random random, bool full)
    {
        ThrowIfQemuDied();
        _writer.ThrowIfFailed();
        await WaitForNoSessionsAsync();
        if (Guard.BytesInFlight != 0)
        {
            throw new FuzzViolation($"the guard holds {Guard.BytesInFlight} bytes in flight with no client");
        }

        if (Interlocked.Exchange(ref _overCap, 0) is > 0 and var over)
        {
            throw new FuzzViolation($"the guard held {over} bytes in flight, over its cap of {MaxBytesInFlight} per connection");
        }

        Interlocked.Exchange(ref _allowedInFlight, MaxBytesInFlight);

        var options = new NbdClientOptions { MaxRequestSize = 1024 * 1024 };
        options.MetaContexts.Add(NbdMetaContexts.BaseAllocation);
        await using (var client = await NbdClient.ConnectAsync(await Guard.ConnectAsync(), CbwSnapshotServer.SnapshotExport, options))
        {
            if (client.Export.Size != DiskSize)
            {
                throw new FuzzViolation($"a fresh client sees a {client.Export.Size}-byte export, not {DiskSize}");
            }

            var runs = Model.UntrimmedRuns(1024 * 1024);
            if (!full && runs.Count > 0)
            {
                runs = [runs[random.Next(runs.Count)]];
            }

            foreach (var (offset, length) in runs)
            {
                var buffer = new byte[length];
                try
                {
                    await client.ReadAsync(offset, buffer);
                }
                catch (NbdException ex)
                {
                    throw new FuzzViolation($"a fresh client's read of untrimmed {offset}+{length} failed: {ex.Message}", ex);
                }

                Model.Check(offset, buffer, "a fresh client's read");
            }
        }

        ThrowIfQemuDied();
        await WaitForNoSessionsAsync();
    }

    /// <summary>The end of an epoch: a full check, then the guest stops and its disk must hold every write.</summary>
    public async Task FinishAsync()
    {
        await VerifyAsync(new Random(0), full: true);
        await _writer.StopAndVerifyAsync();
        if (_writer.Writes == 0)
        {
            throw new FuzzViolation("the guest never wrote during the fuzz");
        }

        if (QemuGrowth > MaxQemuGrowth)
        {
            throw new FuzzViolation($"QEMU's RSS grew by {QemuGrowth >> 20} MiB");
        }

        ThrowIfQemuDied();
    }

    public async ValueTask DisposeAsync()
    {
        if (_disposed)
        {
            return;
        }

        _disposed = true;
        await _stopSampler.CancelAsync();
        await _sampler;
        _stopSampler.Dispose();
        await _writer.DisposeAsync();
        var disposing = Guard.DisposeAsync().AsTask();
        if (await Task.WhenAny(disposing, Task.Delay(s_bound)) != disposing)
        {
            await _server.DisposeAsync();
            throw new FuzzViolation($"disposing the guard did not finish within {s_bound.TotalSeconds} s");
        }

        await _server.DisposeAsync();
        _directory.Dispose();
    }

    private void ThrowIfQemuDied()
    {
        if (!Qemu.IsRunning)
        {
            throw new FuzzViolation($"qemu-storage-daemon died: {Qemu.OutputText}");
        }
    }

    private async Task WaitForNoSessionsAsync()
    {
        var clock = Stopwatch.StartNew();
        while (Guard.ActiveConnections != 0)
        {
            if (clock.Elapsed > s_bound)
            {
                throw new FuzzViolation($"{Guard.ActiveConnections} guard session(s) outlived their client by {s_bound.TotalSeconds} s");
            }

            await Task.Delay(10);
        }
    }

    private async Task SampleAsync()
    {
        // An observer, not synchronisation: the guard's documented cap must hold at every sample.
        while (!_stopSampler.IsCancellationRequested)
        {
            var allowed = Interlocked.Read(ref _allowedInFlight);
            var now = Guard.BytesInFlight;
            if (now > Interlocked.Read(ref _maxBytesInFlight))
            {
                Interlocked.Exchange(ref _maxBytesInFlight, now);
            }

            if (now > allowed)
            {
                Interlocked.CompareExchange(ref _overCap, now, 0);
            }

            try
            {
                await Task.Delay(5, _stopSampler.Token);
            }
            catch (OperationCanceledException)
            {
                return;
            }
        }
    }
}
