namespace Grpc.Backup.Nbd;

/// <summary>
/// Per-export transmission flags the server sends at the end of the handshake
/// (NBD_FLAG_* in the protocol specification).
/// </summary>
[Flags]
#pragma warning disable CA1028 // The wire field is 16 bits; keeping the width makes the mapping obvious.
public enum NbdTransmissionFlags : ushort
#pragma warning restore CA1028
{
    None = 0,
    HasFlags = 1 << 0,
    ReadOnly = 1 << 1,
    SendFlush = 1 << 2,
    SendFua = 1 << 3,
    Rotational = 1 << 4,
    SendTrim = 1 << 5,
    SendWriteZeroes = 1 << 6,
    SendDf = 1 << 7,
    CanMultiConn = 1 << 8,
    SendResize = 1 << 9,
    SendCache = 1 << 10,
    SendFastZero = 1 << 11,
    BlockStatusPayload = 1 << 12,
}
