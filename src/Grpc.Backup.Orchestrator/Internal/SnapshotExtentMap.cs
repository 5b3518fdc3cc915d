using Grpc.Backup.Nbd;
using Grpc.Backup.Protocol.V1;
using Grpc.Backup.Qemu;

namespace Grpc.Backup.Orchestrator.Internal;

/// <summary>
/// The extents the host streams for one FILE_HANDLE volume, read with NBD block status on the snapshot's own NBD export
/// (a FUSE file carries no bitmap): for REUSE the dirty ranges of the exported bitmap, otherwise the whole disk with the
/// ranges <c>base:allocation</c> reports as zero marked <c>zero</c>. Ascending, non-overlapping, adjacent ranges of the
/// same kind merged. It runs before the provider gets the fds, so no query can land on a range already punched (block
/// status of a discarded range fails on a snapshot-access node).
/// </summary>
internal static class SnapshotExtentMap
{
    private const long QueryStep = 1L << 30;

    public static async Task<List<Extent>> BuildAsync(SnapshotExport export, CancellationToken cancellationToken)
    {
        bool dirtyOnly = export.BitmapContext is not null;
        string context = export.BitmapContext ?? NbdMetaContexts.BaseAllocation;
        var options = new NbdClientOptions { MetaContexts = { context }, RequireMetaContexts = dirtyOnly };
        await using NbdClient client = await NbdClient.ConnectAsync(export.NbdSocketPath, export.ExportName, options, cancellationToken);
        long size = checked((long)export.SizeBytes);
        var extents = new List<Extent>();
        if (!client.MetaContexts.Any(c => c.Name == context))
        {
            extents.Add(new Extent { Offset = 0, Length = (ulong)size });
            return extents;
        }

        long offset = 0;
        while (offset < size)
        {
            IReadOnlyList<NbdExtent> status = await client.GetBlockStatusAsync(context, offset, Math.Min(QueryStep, size - offset), cancellationToken);
            if (status.Count == 0)
            {
                throw new BackupException($"{export.DeviceName}: block status of '{context}' at {offset} returned nothing");
            }

            foreach (NbdExtent extent in status)
            {
                long length = Math.Min(extent.Length, size - offset);
                if (extent.Offset != offset || length <= 0)
                {
                    throw new BackupException($"{export.DeviceName}: block status of '{context}' does not continue at {offset}");
                }

                if (dirtyOnly)
                {
                    if ((extent.Flags & NbdExtentFlags.Dirty) != 0)
                    {
                        Append(extents, offset, length, zero: false);
                    }
                }
                else
                {
                    Append(extents, offset, length, zero: (extent.Flags & NbdExtentFlags.Zero) != 0);
                }

                offset += length;
                if (offset >= size)
                {
                    break;
                }
            }
        }

        return extents;
    }

    /// <summary>Splits a volume's extents into messages small enough for one gRPC message each; at least one, the last flagged.</summary>
    public static IEnumerable<VolumeExtents> ToMessages(string deviceName, IReadOnlyList<Extent> extents, int perMessage = 16384)
    {
        int sent = 0;
        do
        {
            var message = new VolumeExtents { DeviceName = deviceName };
            message.Extents.AddRange(extents.Skip(sent).Take(perMessage));
            sent += message.Extents.Count;
            message.Last = sent == extents.Count;
            yield return message;
        }
        while (sent < extents.Count);
    }

    private static void Append(List<Extent> extents, long offset, long length, bool zero)
    {
        if (extents.Count > 0 && extents[^1] is { } last && last.Zero == zero && (long)(last.Offset + last.Length) == offset)
        {
            last.Length += (ulong)length;
            return;
        }

        extents.Add(new Extent { Offset = (ulong)offset, Length = (ulong)length, Zero = zero });
    }
}
