namespace Grpc.Backup.Orchestrator.Inventory;

/// <summary>
/// A VM in the inventory. <see cref="RawConfig"/> is the config file's bytes exactly as read; it is what the
/// provider stores and what a restore returns.
/// </summary>
public sealed record VmGuest(string GuestId, string Name, string QmpSocket, string? AgentSocket,
    IReadOnlyList<VmDisk> Disks, ReadOnlyMemory<byte> RawConfig, string ConfigPath)
{
    public IEnumerable<VmDisk> BackedUpDisks => Disks.Where(d => d.Backup);
}
