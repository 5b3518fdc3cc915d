using Grpc.Backup.Protocol;
using Grpc.Backup.Protocol.V1;
using Grpc.Backup.Provider;

namespace Grpc.Backup.Providers.Directory.Internal;

/// <summary>
/// Copies one volume from the host's snapshot (NBD export or passed file) into a target along a plan made before
/// anything is read (<see cref="ExtentMap"/> for NBD, <see cref="FileExtentPlan"/> for streamed extents): reads the
/// ranges to copy in chunks of the request size with several chunks in flight, stores each chunk (zero blocks as
/// holes or zero clusters), and releases exactly what it stored (<see cref="ISnapshotVolume.ReleaseAsync"/>), so the host's fleecing space shrinks as the copy goes
/// and no discarded range is ever read again. A <see cref="ChunkDigester"/> sees every chunk once it is stored.
/// </summary>
internal sealed class VolumeCopier(string device, ISnapshotVolume source, IVolumeTarget target, BandwidthThrottle bandwidth,
    BackupEventWriter events, int requestSize, int depth, ChunkDigester? hasher = null)
{
    /// <summary>Stored ranges are trimmed in pieces of about this size (see <see cref="TrimBatcher"/>).</summary>
    private const long TrimBatchSize = 32L * 1024 * 1024;

    private TrimBatcher? _trims;
    private long _bytesRead;
    private long _bytesStored;
    private long _bytesDone;

    /// <summary>
    /// Copies along <paramref name="plan"/>. Read failures are ABORTED SNAPSHOT_BROKEN; write failures are the
    /// repository's (<see cref="ContractErrors.FromStorage"/>).
    /// </summary>
    public async Task<VolumeCopyResult> CopyAsync(List<PlannedExtent> plan, CancellationToken cancellationToken)
    {
        long total = plan.Where(e => e.Action != ExtentAction.Skip).Sum(e => e.Length);
        _trims = new TrimBatcher(TrimBatchSize, TrimBatcher.ClosingOffsets(plan), source.ReleaseAsync);
        await events.ProgressAsync(device, 0, total, force: true, cancellationToken);

        await ChunkPipeline.RunAsync(depth, requestSize, async pipeline =>
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
                        await pipeline.StartRangeAsync(extent.Offset, extent.Length, bandwidth, CopyChunkAsync,
                            () => events.ProgressAsync(device, Volatile.Read(ref _bytesDone), total, force: false, cancellationToken));
                        break;
                }
            }
        }, cancellationToken);
        await _trims.FlushAsync(cancellationToken);
        await events.ProgressAsync(device, total, total, force: true, cancellationToken);
        return new VolumeCopyResult(_bytesRead, _bytesStored);
    }

    private async ValueTask CopyChunkAsync(long offset, Memory<byte> buffer, CancellationToken cancellationToken)
    {
        await source.ReadAsync(offset, buffer, cancellationToken);
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
        catch (Exception e) when (ContractErrors.IsStorageFailure(e) && !cancellationToken.IsCancellationRequested)
        {
            throw ContractErrors.FromStorage(e, $"storing {device} at offset {offset}");
        }
        if (hasher is not null)
        {
            await HashAsync(offset, buffer, cancellationToken);
        }
        await _trims!.AddAsync(offset, buffer.Length, cancellationToken);
        Interlocked.Add(ref _bytesDone, buffer.Length);
    }

    private async ValueTask HashAsync(long offset, ReadOnlyMemory<byte> chunk, CancellationToken cancellationToken)
    {
        try
        {
            await hasher!.AppendAsync(offset, chunk, cancellationToken);
        }
        catch (Exception e) when ((ContractErrors.IsStorageFailure(e) || SnapshotErrors.IsNbdFailure(e))
            && !cancellationToken.IsCancellationRequested)
        {
            // Digesting may read the clean part of an incremental's dirty chunks from the stored chain.
            throw ContractErrors.FromStorage(e, $"reading {device}'s stored chain for its chunk digests");
        }
    }

    private async Task StoreZeroesAsync(PlannedExtent extent, CancellationToken cancellationToken)
    {
        try
        {
            await target.WriteZeroesAsync(extent.Offset, extent.Length, cancellationToken);
        }
        catch (Exception e) when (ContractErrors.IsStorageFailure(e) && !cancellationToken.IsCancellationRequested)
        {
            throw ContractErrors.FromStorage(e, $"storing zeros of {device} at offset {extent.Offset}");
        }
        // A range that reads as zero still carries the host's copy-before-write obligation; trimming releases it.
        await _trims!.AddAsync(extent.Offset, extent.Length, cancellationToken);
        Interlocked.Add(ref _bytesDone, extent.Length);
    }
}
