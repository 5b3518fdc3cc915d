namespace Grpc.Backup.Orchestrator;

/// <summary>A restored VM: its disks (device name to image path) and its configs, byte-exact.</summary>
public sealed record VmRestoreResult(IReadOnlyDictionary<string, string> Disks, ReadOnlyMemory<byte> GuestConfig,
    ReadOnlyMemory<byte>? FirewallConfig)
{
    /// <summary>Where the restore's time went (init, copy, convert).</summary>
    public PhaseTimings Phases { get; init; } = new();
}
