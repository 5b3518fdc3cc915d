using Grpc.Backup.Provider;
using Grpc.Backup.Protocol.V1;
using Grpc.Core;

namespace Grpc.Backup.Providers.Directory.Internal;

/// <summary>
/// Reads one FILE_HANDLE volume's extents from the BackupVm request stream (the host sends them volume after volume,
/// each volume's last message flagged) and turns them into a copy plan. The extents are untrusted: each must be
/// non-empty, inside the volume, and after the previous one. Ranges between them are clean (REUSE: skipped) or holes
/// (a full backup: stored as zeros and discarded, which releases the host's copy-before-write obligation for them).
/// </summary>
internal static class FileExtentPlan
{
    /// <summary>More extents than this for one volume is not a real bitmap; refusing bounds the provider's memory.</summary>
    public const int MaxExtents = 4 * 1024 * 1024;

    public static async Task<List<PlannedExtent>> ReadAsync(IAsyncStreamReader<BackupVmRequest> requests, ValidatedVmVolume volume,
        CancellationToken cancellationToken)
    {
        var plan = new List<PlannedExtent>();
        long next = 0;
        int count = 0;
        ExtentAction gap = volume.IsIncremental ? ExtentAction.Skip : ExtentAction.Zero;
        while (true)
        {
            if (!await requests.MoveNext(cancellationToken))
            {
                throw DirectoryErrors.InvalidArgument($"the BackupVm request stream ended before the last extents of {volume.Device}");
            }
            BackupVmRequest request = requests.Current;
            if (request.MessageCase != BackupVmRequest.MessageOneofCase.Extents || request.Extents.DeviceName != volume.Device)
            {
                throw DirectoryErrors.InvalidArgument(
                    $"expected the extents of {volume.Device}, got {request.MessageCase} {(request.Extents?.DeviceName ?? "")}".TrimEnd());
            }
            foreach (Extent extent in request.Extents.Extents)
            {
                if (++count > MaxExtents)
                {
                    throw DirectoryErrors.InvalidArgument($"{volume.Device} has more than {MaxExtents} extents");
                }
                if (extent.Length == 0 || extent.Offset < (ulong)next || extent.Offset > (ulong)volume.SizeBytes
                    || extent.Length > (ulong)volume.SizeBytes - extent.Offset)
                {
                    throw DirectoryErrors.InvalidArgument(
                        $"{volume.Device}: extent [{extent.Offset}, +{extent.Length}) is empty, overlaps or is not ascending, or lies outside the {volume.SizeBytes} bytes");
                }
                long offset = (long)extent.Offset;
                Add(plan, new PlannedExtent(next, offset - next, gap));
                Add(plan, new PlannedExtent(offset, (long)extent.Length, extent.Zero ? ExtentAction.Zero : ExtentAction.Copy));
                next = offset + (long)extent.Length;
            }
            if (request.Extents.Last)
            {
                break;
            }
        }
        Add(plan, new PlannedExtent(next, volume.SizeBytes - next, gap));
        return plan;
    }

    private static void Add(List<PlannedExtent> plan, PlannedExtent extent)
    {
        if (extent.Length == 0)
        {
            return;
        }
        if (plan.Count > 0 && plan[^1] is var last && last.Action == extent.Action && last.End == extent.Offset)
        {
            plan[^1] = last with { Length = last.Length + extent.Length };
            return;
        }
        plan.Add(extent);
    }
}
