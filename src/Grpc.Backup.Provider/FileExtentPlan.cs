using Grpc.Backup.Protocol;
using Grpc.Backup.Protocol.V1;
using Grpc.Core;

namespace Grpc.Backup.Provider;

/// <summary>
/// Reads one FILE_HANDLE volume's extents from the BackupVm request stream (the host sends them volume after volume,
/// each volume's last message flagged) and turns them into a copy plan. The extents are untrusted: each must be
/// non-empty, inside the volume, and after the previous one, and they must be for this device. Ranges between them are
/// clean (REUSE: skipped) or holes (a full backup: stored as zeros and discarded, which releases the host's
/// copy-before-write obligation for them). Every refusal is INVALID_ARGUMENT.
/// </summary>
public static class FileExtentPlan
{
    /// <summary>More extents than this for one volume is not a real bitmap; refusing bounds the provider's memory.</summary>
    public const int DefaultMaxExtents = 4 * 1024 * 1024;

    public static Task<List<PlannedExtent>> ReadAsync(IAsyncStreamReader<BackupVmRequest> requests, ValidatedVmVolume volume,
        CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(volume);
        return ReadAsync(requests, volume.Device, volume.SizeBytes, volume.IsIncremental, DefaultMaxExtents, cancellationToken);
    }

    public static async Task<List<PlannedExtent>> ReadAsync(IAsyncStreamReader<BackupVmRequest> requests, string device, long size,
        bool incremental, int maxExtents, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(requests);
        var plan = new List<PlannedExtent>();
        long next = 0;
        int count = 0;
        ExtentAction gap = incremental ? ExtentAction.Skip : ExtentAction.Zero;
        while (true)
        {
            if (!await requests.MoveNext(cancellationToken))
            {
                throw Invalid($"the BackupVm request stream ended before the last extents of {device}");
            }
            BackupVmRequest request = requests.Current;
            if (request.MessageCase != BackupVmRequest.MessageOneofCase.Extents || request.Extents.DeviceName != device)
            {
                throw Invalid($"expected the extents of {device}, got {request.MessageCase} {(request.Extents?.DeviceName ?? "")}".TrimEnd());
            }
            foreach (Extent extent in request.Extents.Extents)
            {
                if (++count > maxExtents)
                {
                    throw Invalid($"{device} has more than {maxExtents} extents");
                }
                if (extent.Length == 0 || extent.Offset < (ulong)next || extent.Offset > (ulong)size || extent.Length > (ulong)size - extent.Offset)
                {
                    throw Invalid(
                        $"{device}: extent [{extent.Offset}, +{extent.Length}) is empty, overlaps or is not ascending, or lies outside the {size} bytes");
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
        Add(plan, new PlannedExtent(next, size - next, gap));
        return plan;
    }

    /// <summary>Appends <paramref name="extent"/>, merged into the last one when it continues it with the same action.</summary>
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

    private static RpcException Invalid(string message) => ProviderErrors.Create(StatusCode.InvalidArgument, message);
}
