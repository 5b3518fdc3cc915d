using Grpc.Backup.Protocol.V1;
using Grpc.Backup.Provider;
using Grpc.Core;

namespace Grpc.Backup.Providers.Borg.Internal;

/// <summary>
/// Builds a FILE_HANDLE volume's plan from the extents the host streams in-band (untrusted: ascending,
/// non-overlapping, inside the disk, for this device, ended by `last`). Without a bitmap the gaps are holes (zeros);
/// with one (REUSE) the extents are the dirty ranges and the gaps are clean.
/// </summary>
internal static class FileExtentPlan
{
    private const int MaxExtents = 10_000_000;

    public static async Task<List<PlannedExtent>> ReadAsync(IAsyncStreamReader<BackupVmRequest> requests, string device, long size,
        bool incremental, CancellationToken cancellationToken)
    {
        ExtentAction gap = incremental ? ExtentAction.Skip : ExtentAction.Zero;
        var plan = new List<PlannedExtent>();
        long position = 0;
        int count = 0;
        while (true)
        {
            if (!await requests.MoveNext(cancellationToken))
            {
                throw BorgErrors.InvalidArgument($"the request stream ended before the extents of {device} were complete");
            }
            if (requests.Current.MessageCase != BackupVmRequest.MessageOneofCase.Extents)
            {
                throw BorgErrors.InvalidArgument($"expected the extents of {device}, got {requests.Current.MessageCase}");
            }
            VolumeExtents message = requests.Current.Extents;
            if (message.DeviceName != device)
            {
                throw BorgErrors.InvalidArgument($"extents for '{message.DeviceName}' arrived where those of {device} were due");
            }
            foreach (Extent extent in message.Extents)
            {
                if (++count > MaxExtents)
                {
                    throw BorgErrors.InvalidArgument($"{device} has more than {MaxExtents} extents");
                }
                if (extent.Length == 0 || extent.Offset < (ulong)position || extent.Offset > (ulong)size || extent.Length > (ulong)size - extent.Offset)
                {
                    throw BorgErrors.InvalidArgument(
                        $"{device}: extent [{extent.Offset}, +{extent.Length}) is empty, out of order, overlapping or beyond {size} bytes");
                }
                Add(plan, position, (long)extent.Offset - position, gap);
                Add(plan, (long)extent.Offset, (long)extent.Length, extent.Zero ? ExtentAction.Zero : ExtentAction.Copy);
                position = (long)(extent.Offset + extent.Length);
            }
            if (message.Last)
            {
                break;
            }
        }
        Add(plan, position, size - position, gap);
        return plan;
    }

    private static void Add(List<PlannedExtent> plan, long offset, long length, ExtentAction action)
    {
        if (length <= 0)
        {
            return;
        }
        if (plan.Count > 0 && plan[^1].Action == action && plan[^1].End == offset)
        {
            plan[^1] = plan[^1] with { Length = plan[^1].Length + length };
            return;
        }
        plan.Add(new PlannedExtent(offset, length, action));
    }
}
