namespace Grpc.Backup.Nbd.Internal;

/// <summary>Information items carried by NBD_REP_INFO (NBD_INFO_*).</summary>
internal enum NbdInfoType : ushort
{
    Export = 0,
    Name = 1,
    Description = 2,
    BlockSize = 3,
}
