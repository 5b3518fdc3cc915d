namespace Grpc.Backup.Orchestrator.Inventory;

/// <summary>The image format of a VM disk.</summary>
public enum DiskFormat
{
    Raw,
    Qcow2,
}
