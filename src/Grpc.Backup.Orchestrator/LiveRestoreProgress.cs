namespace Grpc.Backup.Orchestrator;

/// <summary>
/// How far a live restore's streams are (from <c>query-block-jobs</c>): bytes streamed over all disks, the rate since
/// the streams started, the estimated time left, and whether a stream is paused (its export failed: the job waits).
/// </summary>
public sealed record LiveRestoreProgress(long BytesDone, long BytesTotal, double BytesPerSecond, TimeSpan? EstimatedRemaining, bool Paused)
{
    public int DisksDone { get; init; }
}
