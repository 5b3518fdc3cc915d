namespace Grpc.Backup.Qemu;

/// <summary>How a provider reaches one disk's point-in-time image over NBD.</summary>
public sealed class SnapshotExport
{
    /// <summary>The device this export belongs to.</summary>
    public required string DeviceName { get; init; }

    /// <summary>The NBD export name (<c>NBD_OPT_GO</c>).</summary>
    public required string ExportName { get; init; }

    /// <summary>The disk's virtual size in bytes.</summary>
    public required ulong SizeBytes { get; init; }

    /// <summary>What was done with the device's bitmap.</summary>
    public required BitmapOutcome Bitmap { get; init; }

    /// <summary>
    /// The NBD meta context with the dirty extents (<c>qemu:dirty-bitmap:NAME</c>, bit 0 = dirty) when
    /// <see cref="Bitmap"/> is <see cref="BitmapOutcome.Reuse"/>; otherwise null and the whole disk is readable.
    /// </summary>
    public string? BitmapContext { get; init; }

    /// <summary>
    /// The copy-before-write cluster size: a discard of the snapshot must cover whole clusters (QEMU 7.2 aborts on
    /// <c>hbitmap_reset: Assertion 'QEMU_IS_ALIGNED(start, gran)'</c> otherwise). Over a raw fleecing image QEMU uses its
    /// default of 64 KiB. Exports without copy-before-write (qemu-nbd, read-only) keep the same value.
    /// </summary>
    public int DiscardGranularity { get; init; } = 64 * 1024;

    /// <summary>The Unix socket of the NBD server serving the export.</summary>
    public required string NbdSocketPath { get; init; }
}
