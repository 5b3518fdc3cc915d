using System.Runtime.ExceptionServices;
using System.Threading.Channels;

namespace Grpc.Backup.Protocol;

/// <summary>
/// The one copy engine (the providers' snapshot copies, the host's restores): keeps up to <c>depth</c> chunk copies in
/// flight, each with its own buffer from a fixed pool of this copy. The pool is the concurrency limit, so memory stays
/// at depth x chunk size whatever the disk size, and it goes with the copy (a shared pool would keep 4 MiB arrays per
/// thread and core for the life of the process). Each chunk is paced by the <see cref="BandwidthThrottle"/> before it
/// takes a buffer. The first failure cancels the other chunks and is what <see cref="RunAsync"/> throws. Buffers are
/// pinned because sockets read into them many times. Holes are the caller's: it starts only the ranges to read.
/// </summary>
public sealed class ChunkPipeline : IDisposable
{
    private readonly Channel<byte[]> _free;
    private readonly int _depth;
    private readonly int _chunkSize;
    private readonly CancellationTokenSource _cancellation;
    private Exception? _failure;

    private ChunkPipeline(int depth, int chunkSize, CancellationToken cancellationToken)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(depth);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(chunkSize);
        _depth = depth;
        _chunkSize = chunkSize;
        _free = Channel.CreateBounded<byte[]>(depth);
        for (int i = 0; i < depth; i++)
        {
            _free.Writer.TryWrite(GC.AllocateUninitializedArray<byte>(chunkSize, pinned: true));
        }
        _cancellation = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
    }

    /// <summary>Fires when the caller cancelled or a chunk failed.</summary>
    public CancellationToken Token => _cancellation.Token;

    /// <summary>
    /// Runs one copy: <paramref name="feed"/> starts the chunks (<see cref="StartRangeAsync"/>); then every chunk is
    /// awaited. On any failure no chunk still touches a buffer or the target when this returns, and the first chunk's
    /// failure (not the cancellation it caused) is what is thrown.
    /// </summary>
    public static async Task RunAsync(int depth, int chunkSize, Func<ChunkPipeline, Task> feed, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(feed);
        using var pipeline = new ChunkPipeline(depth, chunkSize, cancellationToken);
        try
        {
            await feed(pipeline);
            await pipeline.DrainAsync();
            pipeline.ThrowIfFailed();
        }
        catch
        {
            await pipeline.DrainAsync();
            pipeline.ThrowIfFailed();
            throw;
        }
    }

    /// <summary>
    /// Starts [<paramref name="offset"/>, +<paramref name="length"/>) in chunks of at most the chunk size: each waits for
    /// <paramref name="pacer"/>, then for a free buffer, then runs <paramref name="work"/> in the background;
    /// <paramref name="started"/> (progress, say) runs after each start.
    /// </summary>
    public async Task StartRangeAsync(long offset, long length, BandwidthThrottle pacer,
        Func<long, Memory<byte>, CancellationToken, ValueTask> work, Func<Task>? started = null)
    {
        ArgumentNullException.ThrowIfNull(pacer);
        ArgumentNullException.ThrowIfNull(work);
        long end = offset + length;
        for (long at = offset; at < end; at += _chunkSize)
        {
            int chunk = (int)Math.Min(_chunkSize, end - at);
            ThrowIfFailed();
            await pacer.WaitAsync(chunk, _cancellation.Token);
            await StartAsync(at, chunk, work);
            if (started is not null)
            {
                await started();
            }
        }
    }

    public void Dispose() => _cancellation.Dispose();

    private async ValueTask StartAsync(long offset, int length, Func<long, Memory<byte>, CancellationToken, ValueTask> work)
    {
        byte[] buffer;
        try
        {
            buffer = await _free.Reader.ReadAsync(_cancellation.Token);
        }
        catch (OperationCanceledException)
        {
            ThrowIfFailed();
            throw;
        }
        _ = RunChunkAsync(buffer, offset, length, work);
    }

    /// <summary>Waits for every chunk to finish, failed or not: afterwards no chunk touches a buffer any more.</summary>
    private async Task DrainAsync()
    {
        var returned = new List<byte[]>(_depth);
        try
        {
            while (returned.Count < _depth)
            {
                // Not cancellable: a chunk still writing into a buffer must finish before the buffers may go.
                returned.Add(await _free.Reader.ReadAsync(CancellationToken.None));
            }
        }
        finally
        {
            foreach (byte[] buffer in returned)
            {
                _free.Writer.TryWrite(buffer);
            }
        }
    }

    private async Task RunChunkAsync(byte[] buffer, long offset, int length, Func<long, Memory<byte>, CancellationToken, ValueTask> work)
    {
        try
        {
            await work(offset, buffer.AsMemory(0, length), _cancellation.Token);
        }
        catch (Exception e)
        {
            if (Interlocked.CompareExchange(ref _failure, e, null) is null)
            {
                await _cancellation.CancelAsync();
            }
        }
        finally
        {
            _free.Writer.TryWrite(buffer);
        }
    }

    /// <summary>Throws the first chunk failure, if any: it, not the cancellation it caused, is what went wrong.</summary>
    private void ThrowIfFailed()
    {
        if (Volatile.Read(ref _failure) is { } failure)
        {
            ExceptionDispatchInfo.Throw(failure);
        }
    }
}
