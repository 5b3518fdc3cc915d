using System.Buffers;
using Grpc.Backup.Protocol;
using Microsoft.Win32.SafeHandles;

namespace Grpc.Backup.Orchestrator.Internal;

/// <summary>
/// Copies a raw source into a fresh, sparse target file: zero ranges are skipped without reading, chunks that read as
/// all zeros are not written (the target already reads as zero), several chunks are in flight at once, and a
/// <see cref="BandwidthThrottle"/> holds the rate to the restore bandwidth limit.
/// </summary>
internal static class BlockCopier
{
    private const int ChunkSize = 4 * 1024 * 1024;
    private const int InFlight = 4;

    public static async Task<long> CopyAsync(IBlockSource source, SafeFileHandle target, long size, BandwidthThrottle bandwidth,
        Action<long>? progress, CancellationToken cancellationToken)
    {
        long written = 0;
        long done = 0;
        // The target gets its full size first: nothing is written for a trailing hole or zero range, and without this
        // the restored disk would end at its last data (found by grpc-backup-conformance on an incremental restore).
        RandomAccess.SetLength(target, size);
        using var slots = new SemaphoreSlim(InFlight);
        // This copy's own buffers (at most InFlight chunks), gone with it: the shared pool would keep 4 MiB arrays per
        // thread and per core in grpc-backupd for the life of the process.
        var buffers = ArrayPool<byte>.Create(ChunkSize, InFlight);
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
                    byte[] buffer = buffers.Rent(chunkLength);
                    try
                    {
                        await bandwidth.WaitAsync(chunkLength, cancellationToken);
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
                        buffers.Return(buffer);
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
}
