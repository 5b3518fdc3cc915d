namespace Grpc.Backup.Orchestrator;

/// <summary>How a restore treats a disk that was excluded from backup (<c>backup=no</c> in the guest config).</summary>
public enum ExcludedDiskRestore
{
    /// <summary>An empty disk of the size the config records (<c>size=</c>), so the restored guest has every device.</summary>
    RecreateEmpty,

    /// <summary>The disk is left out of the restore.</summary>
    LeaveOut,
}
