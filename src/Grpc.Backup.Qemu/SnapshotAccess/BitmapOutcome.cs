namespace Grpc.Backup.Qemu;

/// <summary>What was done with one device's dirty bitmap (protocol <c>BitmapMode</c>).</summary>
public enum BitmapOutcome
{
    /// <summary>No bitmap is used; the whole disk is readable.</summary>
    None,

    /// <summary>A bitmap was (re)created; the whole disk is readable and must be stored as a full backup.</summary>
    New,

    /// <summary>The previous bitmap was valid; only its dirty extents are exported for an incremental backup.</summary>
    Reuse,
}
