using Grpc.Backup.Containers;

namespace Grpc.Backup.Orchestrator.Inventory;

/// <summary>
/// A container in the inventory: its root file system, further mount points (each backed up or not), its id map
/// (<see cref="IdMap.Privileged"/> when it has none), an optional cgroup v2 directory (for suspend mode's freeze) and an
/// optional firewall config file. <see cref="RawConfig"/> is the config file's bytes exactly as read.
/// </summary>
public sealed record ContainerGuest(string GuestId, string Name, string RootFileSystem, IReadOnlyList<ContainerMountPoint> MountPoints,
    IdMap IdMap, string? Cgroup, string? FirewallConfigPath, ReadOnlyMemory<byte> RawConfig, string ConfigPath)
{
    /// <summary>True when the container's ids are the host's own (no map, or root maps to host root).</summary>
    public bool IsPrivileged => IdMap.IsPrivileged;
}
