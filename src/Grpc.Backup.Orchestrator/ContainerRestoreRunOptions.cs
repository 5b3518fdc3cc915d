using Grpc.Backup.Containers;

namespace Grpc.Backup.Orchestrator;

/// <summary>Where and how a container archive is restored.</summary>
public sealed class ContainerRestoreRunOptions
{
    /// <summary>The restored container's id map. A privileged map is refused.</summary>
    public required IdMap IdMap { get; init; }

    /// <summary>The new root file system; it must not exist (its parent must).</summary>
    public required string TargetRootFileSystem { get; init; }

    /// <summary>Where <c>guest.conf</c> and <c>firewall.conf</c> are written, byte-exact.</summary>
    public required string ConfigDirectory { get; init; }

    /// <summary>The restore's bandwidth limit in bytes per second, enforced by the host; 0 is unlimited.</summary>
    public ulong BandwidthLimit { get; init; }
}
