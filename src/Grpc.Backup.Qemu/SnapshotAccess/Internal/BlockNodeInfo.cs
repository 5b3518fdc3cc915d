namespace Grpc.Backup.Qemu.Internal;

/// <summary>The parts of one <c>query-named-block-nodes</c> entry that snapshot access needs.</summary>
internal sealed record BlockNodeInfo(string NodeName, string Driver, ulong VirtualSize, IReadOnlyList<DirtyBitmapInfo> Bitmaps)
{
    public DirtyBitmapInfo? FindBitmap(string name) => Bitmaps.FirstOrDefault(b => string.Equals(b.Name, name, StringComparison.Ordinal));
}
