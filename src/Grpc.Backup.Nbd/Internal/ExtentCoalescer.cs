namespace Grpc.Backup.Nbd.Internal;

/// <summary>
/// Block status in whole units. A unit that mixes states reports the safe one: for <c>base:allocation</c> a flag holds
/// only if it holds for the whole unit (so a unit with any data reads as data), for dirty bitmaps a unit is dirty if
/// any part of it is (so no write is missed).
/// </summary>
internal static class ExtentCoalescer
{
    /// <param name="extents">Consecutive extents starting at a unit boundary.</param>
    /// <param name="unit">The unit, a power of two.</param>
    /// <param name="intersect">True to AND the flags of a mixed unit (allocation), false to OR them (dirty bitmaps).</param>
    public static List<NbdExtent> Coalesce(List<NbdExtent> extents, uint unit, bool intersect)
    {
        var result = new List<NbdExtent>(extents.Count);
        long partialStart = -1;
        long partialEnd = 0;
        uint partialFlags = 0;
        foreach (var extent in extents)
        {
            var position = extent.Offset;
            var end = extent.End;
            while (position < end)
            {
                var unitStart = position - (position % unit);
                if (position == unitStart && end - position >= unit)
                {
                    // Whole units: the partial unit before them, if any, is complete.
                    FlushPartial();
                    var bodyEnd = end - ((end - position) % unit);
                    Append(result, position, bodyEnd - position, extent.Flags);
                    position = bodyEnd;
                    continue;
                }

                var pieceEnd = Math.Min(end, unitStart + unit);
                if (partialStart == unitStart)
                {
                    partialFlags = intersect ? partialFlags & extent.Flags : partialFlags | extent.Flags;
                }
                else
                {
                    FlushPartial();
                    partialStart = unitStart;
                    partialFlags = extent.Flags;
                }

                partialEnd = pieceEnd;
                position = pieceEnd;
            }
        }

        FlushPartial();
        return result;

        void FlushPartial()
        {
            if (partialStart >= 0)
            {
                Append(result, partialStart, partialEnd - partialStart, partialFlags);
                partialStart = -1;
            }
        }
    }

    /// <summary>Drops what lies at or past <paramref name="end"/> and shortens the extent that crosses it.</summary>
    public static void Clip(List<NbdExtent> extents, long end)
    {
        for (var i = 0; i < extents.Count; i++)
        {
            if (extents[i].End >= end)
            {
                extents[i] = extents[i] with { Length = end - extents[i].Offset };
                extents.RemoveRange(i + 1, extents.Count - i - 1);
                return;
            }
        }
    }

    private static void Append(List<NbdExtent> result, long offset, long length, uint flags)
    {
        if (result.Count > 0 && result[^1].Flags == flags && result[^1].End == offset)
        {
            result[^1] = result[^1] with { Length = result[^1].Length + length };
            return;
        }

        result.Add(new NbdExtent(offset, length, flags));
    }
}
