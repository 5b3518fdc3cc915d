namespace Grpc.Backup.Service.Internal.Configuration;

/// <summary>vzdump's modes, for VMs and containers alike.</summary>
internal enum JobMode
{
    Snapshot,
    Suspend,
    Stop,
}
