namespace Grpc.Backup.Nbd;

/// <summary>NBD transmission-phase command types (NBD_CMD_*).</summary>
#pragma warning disable CA1028 // The wire field is 16 bits.
public enum NbdCommand : ushort
#pragma warning restore CA1028
{
    Read = 0,
    Write = 1,
    Disconnect = 2,
    Flush = 3,
    Trim = 4,
    Cache = 5,
    WriteZeroes = 6,
    BlockStatus = 7,
}
