using Grpc.Backup.Nbd;
using Grpc.Backup.Protocol.V1;
using Grpc.Backup.Provider;

namespace Grpc.Backup.Providers.Directory.Internal;

/// <summary>
/// Copies one volume from the host's NBD export into a target: maps it first (<see cref="ExtentMap"/>), then reads the
/// ranges to copy in chunks of the request size with several chunks in flight, stores each chunk (zero blocks as
/// holes or zero clusters), and TRIMs exactly what it stored, so the host's fleecing space shrinks as the copy goes
/// and no trimmed range is ever read again.
/// </summary>
internal sealed class VolumeCopier(string device, NbdSource source, IVolumeTarget target, TokenBucket bandwidth,
    BackupEventWriter events, int requestSize, int depth)
{
    /// <summary>Stored ranges are trimmed in pieces of about this size (see <see cref="TrimBatcher"/>).</summary>
    private const long TrimBatchSize = 32L * 1024 * 1024;

    private TrimBatcher? _trims;
    private long _bytesRead;
    private long _bytesStored;
    private long _bytesDone;
    private int _trimDisabled;

    /// <summary>
    /// Copies with <paramref name="classify"/> deciding per block-status extent; <paramref name="withoutContext"/> applies
    /// when the export offered no meta context. Read failures are ABORTED SNAPSHOT_BROKEN; write failures are the
    /// repository's (<see cref="DirectoryErrors.FromStorage"/>).
    /// </summary>
    public async Task<VolumeCopyResult> CopyAsync(Func<uint, ExtentAction> classify, ExtentAction withoutContext,
        CancellationToken cancellationToken)
    {
        long size = source.Export.Size;
        List<PlannedExtent> plan;
        try
        {
            plan = await ExtentMap.BuildAsync(source, size, classify, withoutContext, cancellationToken);
        }
        catch (Exception e) when (SnapshotErrors.IsNbdFailure(e) && !cancellationToken.IsCancellationRequested)
        {
            throw SnapshotErrors.Broken(device, "mapping it with block status", e);
        }
        long total = plan.Where(e => e.Action != ExtentAction.Skip).Sum(e => e.Length);
        _trims = new TrimBatcher(TrimBatchSize, TrimBatcher.ClosingOffsets(plan), TrimAsync);
        await events.ProgressAsync(device, 0, total, force: true, cancellationToken);

        using var pipeline = new ChunkPipeline(depth, requestSize, cancellationToken);
        try
        {
            foreach (PlannedExtent extent in plan)
            {
                switch (extent.Action)
                {
                    case ExtentAction.Skip:
                        continue;
                    case ExtentAction.Zero:
                        await StoreZeroesAsync(extent, pipeline.Token);
                        break;
                    case ExtentAction.Copy:
                        for (long offset = extent.Offset; offset < extent.End; offset += requestSize)
                        {
                            int length = (int)Math.Min(requestSize, extent.End - offset);
                            await bandwidth.WaitAsync(length, pipeline.Token);
                            await pipeline.StartAsync(offset, length, CopyChunkAsync);
                            await events.ProgressAsync(device, Volatile.Read(ref _bytesDone), total, force: false, cancellationToken);
                        }
                        break;
                }
            }
            await pipeline.CompleteAsync();
            await _trims.FlushAsync(cancellationToken);
        }
        catch
        {
            // No chunk may still be reading into a buffer or writing to the target once we return.
            await pipeline.DrainAsync();
            pipeline.ThrowIfFailed();
            throw;
        }
        await events.ProgressAsync(device, total, total, force: true, cancellationToken);
        return new VolumeCopyResult(_bytesRead, _bytesStored);
    }

    private async ValueTask CopyChunkAsync(long offset, Memory<byte> buffer, CancellationToken cancellationToken)
    {
        try
        {
            await source.Client.ReadAsync(offset, buffer, cancellationToken);
        }
        catch (Exception e) when (SnapshotErrors.IsNbdFailure(e) && !cancellationToken.IsCancellationRequested)
        {
            throw SnapshotErrors.Broken(device, $"reading {buffer.Length} bytes at offset {offset}", e);
        }
        Interlocked.Add(ref _bytesRead, buffer.Length);

        var runs = new List<DataRun>();
        ZeroScan.Split(buffer.Span, runs);
        try
        {
            foreach (DataRun run in runs)
            {
                if (run.IsZero)
                {
                    await target.WriteZeroesAsync(offset + run.Start, run.Length, cancellationToken);
                }
                else
                {
                    await target.WriteAsync(offset + run.Start, buffer.Slice(run.Start, run.Length), cancellationToken);
                    Interlocked.Add(ref _bytesStored, run.Length);
                }
            }
        }
        catch (Exception e) when (DirectoryErrors.IsStorageFailure(e) && !cancellationToken.IsCancellationRequested)
        {
            throw DirectoryErrors.FromStorage(e, $"storing {device} at offset {offset}");
        }
        await _trims!.AddAsync(offset, buffer.Length, cancellationToken);
        Interlocked.Add(ref _bytesDone, buffer.Length);
    }

    private async Task StoreZeroesAsync(PlannedExtent extent, CancellationToken cancellationToken)
    {
        try
        {
            await target.WriteZeroesAsync(extent.Offset, extent.Length, cancellationToken);
        }
        catch (Exception e) when (DirectoryErrors.IsStorageFailure(e) && !cancellationToken.IsCancellationRequested)
        {
            throw DirectoryErrors.FromStorage(e, $"storing zeros of {device} at offset {extent.Offset}");
        }
        // A range that reads as zero still carries the host's copy-before-write obligation; trimming releases it.
        await _trims!.AddAsync(extent.Offset, extent.Length, cancellationToken);
        Interlocked.Add(ref _bytesDone, extent.Length);
    }

    /// <summary>
    /// TRIMs a stored range (called by the batcher). TRIM only saves the host space, so an export that refuses it does not fail the backup:
    /// the first refusal is logged and trimming stops. A lost connection, though, is a broken snapshot.
    /// </summary>
    private async Task TrimAsync(long offset, long length, CancellationToken cancellationToken)
    {
        if (!source.CanTrim || Volatile.Read(ref _trimDisabled) != 0)
        {
            return;
        }
        try
        {
            await source.Client.TrimAsync(offset, length, NbdCommandFlags.None, cancellationToken);
        }
        catch (NbdException e) when (!cancellationToken.IsCancellationRequested)
        {
            if (Interlocked.Exchange(ref _trimDisabled, 1) == 0)
            {
                await events.LogAsync(LogRecord.Types.Level.Warning,
                    $"{device}: the export refused TRIM ({e.Message}); the rest of the volume is copied without trimming",
                    cancellationToken);
            }
        }
        catch (Exception e) when (SnapshotErrors.IsNbdFailure(e) && !cancellationToken.IsCancellationRequested)
        {
            throw SnapshotErrors.Broken(device, $"trimming {length} bytes at offset {offset}", e);
        }
    }
}
