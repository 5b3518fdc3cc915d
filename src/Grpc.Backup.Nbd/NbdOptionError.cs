namespace Grpc.Backup.Nbd;

/// <summary>Error replies a server can give to a handshake option (NBD_REP_ERR_*).</summary>
#pragma warning disable CA1028 // The wire field is 32 bits unsigned; the values have bit 31 set.
public enum NbdOptionError : uint
#pragma warning restore CA1028
{
    None = 0,
    Unsupported = 0x8000_0001,
    Policy = 0x8000_0002,
    Invalid = 0x8000_0003,
    Platform = 0x8000_0004,
    TlsRequired = 0x8000_0005,
    UnknownExport = 0x8000_0006,
    Shutdown = 0x8000_0007,
    BlockSizeRequired = 0x8000_0008,
    TooBig = 0x8000_0009,
    ExtendedHeadersRequired = 0x8000_000A,
}
