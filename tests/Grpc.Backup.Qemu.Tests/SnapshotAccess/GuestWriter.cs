namespace Grpc.Backup.Qemu.Tests.SnapshotAccess;

/// <summary>A busy guest: writes random 64 KiB blocks at random aligned offsets until stopped.</summary>
internal sealed class GuestWriter : IAsyncDisposable
{
    private const int BlockSize = 64 * 1024;

    private readonly CancellationTokenSource _stop = new();
    private readonly Task<int> _loop;
    private int _written;

    private readonly TimeSpan _pause;
    private readonly long _regionBytes;

    private GuestWriter(FileStream guest, TimeSpan pause, long regionBytes)
    {
        _pause = pause;
        _regionBytes = regionBytes;
        _loop = Task.Run(() => WriteUntilStopped(guest), CancellationToken.None);
    }

    /// <param name="pause">Time between writes; zero writes flat out (a 32 MiB disk is then all dirty within a second).</param>
    /// <param name="regionBytes">Writes only below this offset (0: the whole disk), so a test knows what stays clean.</param>
    public static GuestWriter Start(StorageDaemonVm vm, int disk, TimeSpan pause = default, long regionBytes = 0) =>
        new(vm.OpenGuest(disk), pause, regionBytes);

    public int Written => Volatile.Read(ref _written);

    /// <summary>Waits until at least <paramref name="blocks"/> blocks are written, so a test knows the guest is busy.</summary>
    public async Task WaitForAsync(int blocks)
    {
        while (Written < blocks)
        {
            Assert.False(_loop.IsCompleted, "the writer stopped");
            await Task.Delay(10);
        }
    }

    /// <summary>Stops writing and returns how many blocks were written.</summary>
    public async Task<int> StopAsync()
    {
        await _stop.CancelAsync();
        return await _loop;
    }

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync();
        try
        {
            await _loop;
        }
        catch (IOException)
        {
            // The daemon may already be gone.
        }

        _stop.Dispose();
    }

    private int WriteUntilStopped(FileStream guest)
    {
        using (guest)
        {
            byte[] block = new byte[BlockSize];
            long blocks = (_regionBytes > 0 ? Math.Min(_regionBytes, guest.Length) : guest.Length) / BlockSize;
            while (!_stop.IsCancellationRequested)
            {
                Random.Shared.NextBytes(block);
                guest.Position = Random.Shared.NextInt64(blocks) * BlockSize;
                guest.Write(block);
                Interlocked.Increment(ref _written);
                if (_pause > TimeSpan.Zero)
                {
                    Thread.Sleep(_pause);
                }
            }

            guest.Flush(flushToDisk: true);
            return Written;
        }
    }
}
