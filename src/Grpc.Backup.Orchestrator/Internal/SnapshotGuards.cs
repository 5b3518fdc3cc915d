using Grpc.Backup.Nbd;
using Grpc.Backup.Protocol;
using Grpc.Backup.Qemu;

namespace Grpc.Backup.Orchestrator.Internal;

/// <summary>
/// How the host guards one snapshot export (<see cref="NbdGuard"/>): a provider, or the nbdfuse mount it reads, is
/// served that export alone, with its allocation and (for an incremental) dirty-bitmap contexts, TRIMs rounded inward
/// to the copy-before-write cluster.
/// </summary>
internal static class SnapshotGuards
{
    /// <param name="export">The export to guard.</param>
    /// <param name="minimumBlockSize">
    /// Overrides the advertised minimum (the cluster): nbdfuse forwards whatever the page cache or a provider's
    /// fallocate asks, and libnbd refuses misaligned requests client-side, so its mount gets byte granularity; the
    /// guard rounds its TRIMs all the same.
    /// </param>
    /// <param name="bandwidth">The backup's bandwidth limit, shared by all its guards; null for none.</param>
    public static Task<NbdGuard> StartAsync(SnapshotExport export, int? minimumBlockSize, BandwidthThrottle? bandwidth, CancellationToken cancellationToken)
    {
        List<string> contexts = [NbdMetaContexts.BaseAllocation];
        if (!string.IsNullOrEmpty(export.BitmapContext))
        {
            contexts.Add(export.BitmapContext);
        }
        return NbdGuard.StartAsync(new NbdGuardOptions
        {
            UpstreamSocketPath = export.NbdSocketPath,
            ExportName = export.ExportName,
            MetaContexts = contexts,
            DiscardGranularity = export.DiscardGranularity,
            MinimumBlockSize = minimumBlockSize,
            ReadPacer = bandwidth is null ? null : (bytes, cancellationToken) => bandwidth.WaitAsync(bytes, cancellationToken),
        }, cancellationToken);
    }
}
