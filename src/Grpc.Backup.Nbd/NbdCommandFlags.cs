namespace Grpc.Backup.Nbd;

/// <summary>
/// Command flags a caller may attach to a write-type command (NBD_CMD_FLAG_*).
/// Flags used internally by the client (DF, REQ_ONE) are not exposed.
/// </summary>
[Flags]
#pragma warning disable CA1028 // The wire field is 16 bits.
public enum NbdCommandFlags : ushort
#pragma warning restore CA1028
{
    None = 0,

    /// <summary>Force unit access: the reply is sent only once the data is on stable storage.</summary>
    Fua = 1 << 0,

    /// <summary>For WRITE_ZEROES: the zeroed range must stay allocated (no hole may be punched).</summary>
    NoHole = 1 << 1,

    /// <summary>For WRITE_ZEROES: fail fast with ENOTSUP instead of falling back to a slow write of zeroes.</summary>
    FastZero = 1 << 4,
}
