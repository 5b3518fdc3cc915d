using System.Buffers;
using System.Threading.RateLimiting;
using Microsoft.Win32.SafeHandles;

namespace Grpc.Backup.Orchestrator.Internal;

/// <summary>
/// Copies a raw source into a fresh, sparse target file: zero ranges are skipped without reading, chunks that read as
/// all zeros are not written (the target already reads as zero), several chunks are in flight at once, and an
/// optional limiter holds the rate to the restore bandwidth limit.
/// </summary>
internal static class BlockCopier
{
    private const int ChunkSize = 4 * 1024 * 1024;
    private const int InFlight = 4;

    public static async Task<long> CopyAsync(IBlockSource source, SafeFileHandle target, long size, RateLimiter? limiter,
        Action<long>? progress, CancellationToken cancellationToken)
    {
        long written = 0;
        long done = 0;
        using var slots = new SemaphoreSlim(InFlight);
        var pending = new List<Task>();
        Exception? failure = null;
        await foreach (var (offset, length, zero) in source.GetExtentsAsync(size, cancellationToken))
        {
            if (zero)
            {
                progress?.Invoke(Interlocked.Add(ref done, length));
                continue;
            }
            for (long chunk = offset; chunk < offset + length; chunk += ChunkSize)
            {
                int chunkLength = (int)Math.Min(ChunkSize, offset + length - chunk);
                await slots.WaitAsync(cancellationToken);
                if (Volatile.Read(ref failure) is { } error)
                {
                    slots.Release();
                    throw error;
                }
                long at = chunk;
                pending.Add(Task.Run(async () =>
                {
                    byte[] buffer = ArrayPool<byte>.Shared.Rent(chunkLength);
                    try
                    {
                        if (limiter is not null)
                        {
                            using RateLimitLease lease = await limiter.AcquireAsync(chunkLength, cancellationToken);
                        }
                        Memory<byte> data = buffer.AsMemory(0, chunkLength);
                        await source.ReadAsync(at, data, cancellationToken);
                        if (data.Span.ContainsAnyExcept((byte)0))
                        {
                            await RandomAccess.WriteAsync(target, data, at, cancellationToken);
                            Interlocked.Add(ref written, chunkLength);
                        }
                        progress?.Invoke(Interlocked.Add(ref done, chunkLength));
                    }
                    catch (Exception e)
                    {
                        Interlocked.CompareExchange(ref failure, e, null);
                    }
                    finally
                    {
                        ArrayPool<byte>.Shared.Return(buffer);
                        slots.Release();
                    }
                }, cancellationToken));
            }
            pending.RemoveAll(t => t.IsCompleted);
        }
        await Task.WhenAll(pending);
        if (failure is not null)
        {
            throw failure;
        }
        RandomAccess.FlushToDisk(target);
        return written;
    }

    /// <summary>A limiter for <paramref name="bytesPerSecond"/>, or null for unlimited.</summary>
    public static TokenBucketRateLimiter? CreateLimiter(ulong bytesPerSecond)
    {
        if (bytesPerSecond == 0)
        {
            return null;
        }
        int perTenth = (int)Math.Clamp(bytesPerSecond / 10, 1, int.MaxValue);
        return new TokenBucketRateLimiter(new TokenBucketRateLimiterOptions
        {
            // One chunk must fit in the bucket, or a lease for it could never be granted.
            TokenLimit = Math.Max(perTenth, ChunkSize),
            TokensPerPeriod = perTenth,
            ReplenishmentPeriod = TimeSpan.FromMilliseconds(100),
            QueueLimit = int.MaxValue,
            QueueProcessingOrder = QueueProcessingOrder.OldestFirst,
            AutoReplenishment = true,
        });
    }
}
