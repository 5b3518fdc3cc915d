namespace Grpc.Backup.Containers;

/// <summary>
/// One id map line, <c>u 0 100000 65536</c>: <see cref="Count"/> ids starting at <see cref="ContainerId"/> inside the
/// container are <see cref="HostId"/>.. on the host. The same order as <c>lxc.idmap</c> and <c>/proc/PID/uid_map</c>.
/// </summary>
public readonly record struct IdMapRange(IdKind Kind, uint ContainerId, uint HostId, uint Count)
{
    /// <summary>True when <paramref name="containerId"/> falls in this range.</summary>
    public bool ContainsContainerId(uint containerId) => containerId >= ContainerId && containerId - ContainerId < Count;

    /// <summary>True when <paramref name="hostId"/> falls in this range.</summary>
    public bool ContainsHostId(uint hostId) => hostId >= HostId && hostId - HostId < Count;

    public override string ToString() => $"{(Kind == IdKind.User ? 'u' : 'g')} {ContainerId} {HostId} {Count}";
}
