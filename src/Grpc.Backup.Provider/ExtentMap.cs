using Grpc.Backup.Nbd;

namespace Grpc.Backup.Provider;

/// <summary>
/// Maps a whole volume with NBD block status before anything is read or trimmed. Block status of a trimmed range
/// fails on a snapshot-access export, so mapping first keeps every query ahead of every TRIM; it also gives the exact
/// byte total for progress. Adjacent ranges with the same action are merged into one, so reads stay large.
/// </summary>
public static class ExtentMap
{
    /// <summary>base:allocation: a range that reads as zero is stored as a hole, everything else is read.</summary>
    public static ExtentAction ClassifyAllocation(uint flags) =>
        (flags & NbdExtentFlags.Zero) != 0 ? ExtentAction.Zero : ExtentAction.Copy;

    /// <summary>qemu:dirty-bitmap: bit 0 set is dirty and read; clean ranges are not in this backup.</summary>
    public static ExtentAction ClassifyDirty(uint flags) =>
        (flags & NbdExtentFlags.Dirty) != 0 ? ExtentAction.Copy : ExtentAction.Skip;

    /// <summary>
    /// The plan for [0, <paramref name="size"/>). Without a negotiated context every byte is
    /// <paramref name="withoutContext"/>.
    /// </summary>
    public static async Task<List<PlannedExtent>> BuildAsync(NbdSource source, long size, Func<uint, ExtentAction> classify,
        ExtentAction withoutContext, CancellationToken cancellationToken)
    {
        var plan = new List<PlannedExtent>();
        if (source.MetaContext is null)
        {
            Add(plan, new PlannedExtent(0, size, withoutContext));
            return plan;
        }
        long offset = 0;
        while (offset < size)
        {
            IReadOnlyList<NbdExtent> extents = await source.Client.GetBlockStatusAsync(source.MetaContext, offset, size - offset,
                cancellationToken);
            if (extents.Count == 0)
            {
                throw new NbdProtocolException($"block status of '{source.MetaContext}' at offset {offset} returned no extents");
            }
            foreach (NbdExtent extent in extents)
            {
                if (extent.Offset != offset || extent.Length <= 0)
                {
                    throw new NbdProtocolException(
                        $"block status of '{source.MetaContext}' returned extent [{extent.Offset}, +{extent.Length}) where offset {offset} was expected");
                }
                // A server may describe a little past the end of the export; the plan stops at the end.
                long end = Math.Min(extent.End, size);
                Add(plan, new PlannedExtent(offset, end - offset, classify(extent.Flags)));
                offset = end;
                if (offset >= size)
                {
                    break;
                }
            }
        }
        return plan;
    }

    private static void Add(List<PlannedExtent> plan, PlannedExtent extent)
    {
        if (plan.Count > 0 && plan[^1] is var last && last.Action == extent.Action && last.End == extent.Offset)
        {
            plan[^1] = last with { Length = last.Length + extent.Length };
            return;
        }
        plan.Add(extent);
    }
}
