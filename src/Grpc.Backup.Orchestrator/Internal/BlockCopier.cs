using Grpc.Backup.Protocol;
using Microsoft.Win32.SafeHandles;

namespace Grpc.Backup.Orchestrator.Internal;

/// <summary>
/// Copies a raw source into a fresh, sparse target file with the one copy engine (<see cref="ChunkPipeline"/>): zero
/// ranges are skipped without reading, chunks that read as all zeros are not written (the target already reads as
/// zero), several chunks are in flight at once, a <see cref="BandwidthThrottle"/> holds the rate to the restore
/// bandwidth limit, and the first failed chunk cancels the rest.
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
        await ChunkPipeline.RunAsync(InFlight, ChunkSize, async pipeline =>
        {
            await foreach (var (offset, length, zero) in source.GetExtentsAsync(size, pipeline.Token))
            {
                if (zero)
                {
                    progress?.Invoke(Interlocked.Add(ref done, length));
                    continue;
                }
                await pipeline.StartRangeAsync(offset, length, bandwidth, CopyChunkAsync);
            }
        }, cancellationToken);
        RandomAccess.FlushToDisk(target);
        return written;

        async ValueTask CopyChunkAsync(long offset, Memory<byte> data, CancellationToken token)
        {
            await source.ReadAsync(offset, data, token);
            if (data.Span.ContainsAnyExcept((byte)0))
            {
                await RandomAccess.WriteAsync(target, data, offset, token);
                Interlocked.Add(ref written, data.Length);
            }
            progress?.Invoke(Interlocked.Add(ref done, data.Length));
        }
    }
}
