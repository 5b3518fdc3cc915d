using System.Globalization;

namespace Grpc.Backup.Orchestrator;

/// <summary>
/// How far a live restore's streams are (from <c>query-block-jobs</c>): bytes streamed over all disks, the rate since
/// the streams started, the estimated time left, and whether a stream is paused (its export failed: the job waits).
/// </summary>
public sealed record LiveRestoreProgress(long BytesDone, long BytesTotal, double BytesPerSecond, TimeSpan? EstimatedRemaining, bool Paused)
{
    public int DisksDone { get; init; }

    /// <summary>Each disk's part, in the archive's order.</summary>
    public IReadOnlyList<LiveRestoreDiskProgress> Disks { get; init; } = [];

    /// <summary>One line for logs and terminals: bytes streamed, rate, estimated time left, disks independent.</summary>
    public string Describe()
    {
        const double MiB = 1024 * 1024;
        string left = Paused ? "paused (the export does not answer)"
            : EstimatedRemaining is { } eta ? string.Create(CultureInfo.InvariantCulture, $"about {Math.Ceiling(eta.TotalSeconds):F0} s left") : "no estimate yet";
        return string.Create(CultureInfo.InvariantCulture,
            $"streamed {BytesDone / MiB:F1} of {BytesTotal / MiB:F1} MiB ({100.0 * BytesDone / Math.Max(1, BytesTotal):F0}%), {BytesPerSecond / MiB:F1} MiB/s, {left}; {DisksDone} of {Disks.Count} disk(s) independent");
    }
}
