namespace Grpc.Backup.Orchestrator;

/// <summary>What the caller gets to start the VM of a live restore: its disks and its archived guest config.</summary>
public sealed record LiveRestoreGuest(IReadOnlyList<LiveRestoreDisk> Disks, ReadOnlyMemory<byte> GuestConfig);
