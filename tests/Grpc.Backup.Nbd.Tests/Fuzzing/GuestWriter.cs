namespace Grpc.Backup.Nbd.Tests.Fuzzing;

/// <summary>
/// The guest: writes random data at random places of the live disk all through the fuzz (through QEMU's
/// copy-before-write node, as a running guest's writes go) and remembers what it wrote, so that afterwards the live disk
/// must hold every one of its writes, and none may have failed.
/// </summary>
internal sealed class GuestWriter : IAsyncDisposable
{
    private const int Block = 4096;

    private readonly NbdClient _client;
    private readonly byte[] _disk;
    private readonly Random _random;
    private readonly Task _loop;
    private volatile bool _stopping;
    private long _writes;

    private GuestWriter(NbdClient client, byte[] disk, int seed)
    {
        _client = client;
        _disk = disk;
        _random = new Random(seed);
        _loop = Task.Run(WriteLoopAsync);
    }

    /// <summary>Writes that completed.</summary>
    public long Writes => Interlocked.Read(ref _writes);

    /// <summary>Starts writing to the live export; <paramref name="initial"/> is the disk's content now (copied).</summary>
    public static async Task<GuestWriter> StartAsync(string socketPath, byte[] initial, int seed)
    {
        var client = await NbdClient.ConnectAsync(socketPath, CbwSnapshotServer.LiveExport);
        return new GuestWriter(client, (byte[])initial.Clone(), seed);
    }

    /// <summary>Throws when a write failed (the guest saw an error).</summary>
    public void ThrowIfFailed()
    {
        if (_loop.IsFaulted)
        {
            throw new FuzzViolation("a guest write to the live disk failed", _loop.Exception!.InnerException!);
        }
    }

    /// <summary>Stops after the write in progress, then reads the whole live disk back: it must be what the guest wrote.</summary>
    public async Task StopAndVerifyAsync()
    {
        _stopping = true;
        try
        {
            await _loop;
        }
        catch (Exception ex)
        {
            throw new FuzzViolation("a guest write to the live disk failed", ex);
        }

        var live = new byte[_disk.Length];
        await _client.ReadAsync(0, live);
        if (!live.AsSpan().SequenceEqual(_disk))
        {
            throw new FuzzViolation($"the live disk lost a guest write (of {Writes})");
        }
    }

    public async ValueTask DisposeAsync()
    {
        _stopping = true;
        try
        {
            await _loop;
        }
        catch (Exception)
        {
            // Reported by ThrowIfFailed or StopAndVerifyAsync; disposal only releases.
        }

        await _client.DisposeAsync();
    }

    private async Task WriteLoopAsync()
    {
        var blocks = _disk.Length / Block;
        while (!_stopping)
        {
            var offset = (long)_random.Next(blocks) * Block;
            var length = (int)Math.Min(Block * _random.Next(1, 17), _disk.Length - offset);
            var data = new byte[length];
            _random.NextBytes(data);
            await _client.WriteAsync(offset, data);
            data.CopyTo(_disk, offset);
            Interlocked.Increment(ref _writes);

            // Pacing, not synchronisation: a guest that writes steadily without taking a whole core of a loaded machine.
            await Task.Delay(5);
        }
    }
}
