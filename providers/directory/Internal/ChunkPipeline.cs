using System.Threading.Channels;

namespace Grpc.Backup.Providers.Directory.Internal;

/// <summary>
/// Keeps up to <c>depth</c> chunk copies in flight, each with its own buffer from a fixed pool: the pool is the
/// concurrency limit, so memory stays at depth x chunk size whatever the disk size. The first failure cancels the
/// others and is what <see cref="StartAsync"/> or <see cref="CompleteAsync"/> throws. Buffers are pinned because the
/// socket reads into them many times.
/// </summary>
internal sealed class ChunkPipeline : IDisposable
{
    private readonly Channel<byte[]> _free;
    private readonly int _depth;
    private readonly CancellationTokenSource _cancellation;
    private Exception? _failure;

    public ChunkPipeline(int depth, int chunkSize, CancellationToken cancellationToken)
    {
        _depth = depth;
        _free = Channel.CreateBounded<byte[]>(depth);
        for (int i = 0; i < depth; i++)
        {
            _free.Writer.TryWrite(GC.AllocateUninitializedArray<byte>(chunkSize, pinned: true));
        }
        _cancellation = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
    }

    /// <summary>Fires when the caller cancelled or a chunk failed.</summary>
    public CancellationToken Token => _cancellation.Token;

    /// <summary>Waits for a free buffer, then runs <paramref name="work"/> on the chunk in the background.</summary>
    public async ValueTask StartAsync(long offset, int length, Func<long, Memory<byte>, CancellationToken, ValueTask> work)
    {
        ThrowIfFailed();
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
        _ = RunAsync(buffer, offset, length, work);
    }

    /// <summary>Waits for every chunk to finish (all buffers back in the pool) and throws the first failure.</summary>
    public async Task CompleteAsync()
    {
        await DrainAsync();
        ThrowIfFailed();
    }

    /// <summary>Waits for every chunk to finish, failed or not: afterwards no chunk touches a buffer any more.</summary>
    public async Task DrainAsync()
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

    public void Dispose() => _cancellation.Dispose();

    private async Task RunAsync(byte[] buffer, long offset, int length, Func<long, Memory<byte>, CancellationToken, ValueTask> work)
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
    public void ThrowIfFailed()
    {
        if (Volatile.Read(ref _failure) is { } failure)
        {
            System.Runtime.ExceptionServices.ExceptionDispatchInfo.Throw(failure);
        }
    }
}
