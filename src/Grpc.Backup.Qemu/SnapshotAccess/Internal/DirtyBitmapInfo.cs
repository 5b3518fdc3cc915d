namespace Grpc.Backup.Qemu.Internal;

/// <summary>One named dirty bitmap as <c>query-named-block-nodes</c> reports it.</summary>
/// <param name="Count">Dirty bytes.</param>
/// <param name="Inconsistent">
/// Set after an unclean stop (qcow2 flag <c>in-use</c>): the bitmap missed writes and can only be removed.
/// </param>
internal sealed record DirtyBitmapInfo(string Name, bool Recording, bool Busy, bool Persistent, bool Inconsistent, long Granularity, long Count)
{
    /// <summary>
    /// Whether it can serve as an incremental base: it must have recorded every write since it was last
    /// reset. A disabled bitmap without our background bitmap beside it has a gap, so it does not qualify.
    /// </summary>
    public bool IsUsableBase => Recording && !Inconsistent;
}
