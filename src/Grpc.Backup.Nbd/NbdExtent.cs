namespace Grpc.Backup.Nbd;

/// <summary>
/// One block-status descriptor: <paramref name="Length"/> bytes starting at <paramref name="Offset"/>
/// share the context-specific <paramref name="Flags"/> (see <see cref="NbdExtentFlags"/>).
/// </summary>
public readonly record struct NbdExtent(long Offset, long Length, uint Flags)
{
    /// <summary>The first byte after this extent.</summary>
    public long End => Offset + Length;
}
