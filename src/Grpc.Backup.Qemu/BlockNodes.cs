using Grpc.Backup.Qemu.Internal;

namespace Grpc.Backup.Qemu;

/// <summary>Facts about a running QEMU's block nodes that the host needs before it sets up snapshot access.</summary>
public static class BlockNodes
{
    /// <summary>The virtual size of each named node; a node that does not exist is an error naming it.</summary>
    public static async Task<IReadOnlyDictionary<string, ulong>> GetVirtualSizesAsync(QmpClient qmp, IEnumerable<string> nodeNames,
        CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(nodeNames);
        var nodes = await BlockNodeQuery.QueryAsync(qmp, cancellationToken);
        var sizes = new Dictionary<string, ulong>(StringComparer.Ordinal);
        foreach (string name in nodeNames)
        {
            if (!nodes.TryGetValue(name, out BlockNodeInfo? node) || node.VirtualSize == 0)
            {
                throw new QmpException($"block node '{name}' does not exist in the running QEMU, or has no size");
            }
            sizes[name] = node.VirtualSize;
        }
        return sizes;
    }
}
