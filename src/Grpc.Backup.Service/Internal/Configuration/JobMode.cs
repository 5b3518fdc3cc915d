namespace Grpc.Backup.Service.Internal.Configuration;

/// <summary>vzdump's modes. VMs are always backed up live (snapshot); containers take all three.</summary>
internal enum JobMode
{
    Snapshot,
    Suspend,
    Stop,
}
