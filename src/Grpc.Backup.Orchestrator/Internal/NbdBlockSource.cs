using Grpc.Backup.Nbd;

namespace Grpc.Backup.Orchestrator.Internal;

/// <summary>An NBD export served by the provider; holes and zero runs come from <c>base:allocation</c> and are not read.</summary>
internal sealed class NbdBlockSource(NbdClient client) : IBlockSource
{
    private const long MapStep = 1L << 30;

    public async IAsyncEnumerable<(long Offset, long Length, bool Zero)> GetExtentsAsync(long size,
        [System.Runtime.CompilerServices.EnumeratorCancellation] CancellationToken cancellationToken)
    {
        if (!client.MetaContexts.Any(c => c.Name == NbdMetaContexts.BaseAllocation))
        {
            yield return (0, size, false);
            yield break;
        }
        long offset = 0;
        while (offset < size)
        {
            var extents = await client.GetBlockStatusAsync(NbdMetaContexts.BaseAllocation, offset, Math.Min(MapStep, size - offset), cancellationToken);
            if (extents.Count == 0)
            {
                throw new BackupException($"the provider's NBD server returned no block status at {offset}");
            }
            foreach (NbdExtent extent in extents)
            {
                long length = Math.Min(extent.Length, size - offset);
                if (extent.Offset != offset || length <= 0)
                {
                    throw new BackupException($"the provider's NBD server returned a block status that does not continue at {offset}");
                }
                yield return (offset, length, (extent.Flags & NbdExtentFlags.Zero) != 0);
                offset += length;
                if (offset >= size)
                {
                    break;
                }
            }
        }
    }

    public ValueTask ReadAsync(long offset, Memory<byte> buffer, CancellationToken cancellationToken) =>
        client.ReadAsync(offset, buffer, cancellationToken);

    public ValueTask DisposeAsync() => client.DisposeAsync();
}
