namespace Grpc.Backup.Transport;

/// <summary>
/// Why a claim failed. Maps onto the protocol's ErrorReason: UnknownTransfer →
/// FD_TRANSFER_UNKNOWN, Rejected → FD_TRANSFER_REJECTED, Expired → FD_TRANSFER_EXPIRED,
/// AlreadyClaimed and IndexOutOfRange → FD_ALREADY_CLAIMED, KindMismatch → FD_KIND_MISMATCH.
/// </summary>
public enum FdClaimFailure
{
    /// <summary>No transfer with the token arrived within the wait.</summary>
    UnknownTransfer,

    /// <summary>The transfer broke a receiving rule; its fds were closed.</summary>
    Rejected,

    /// <summary>The transfer was not claimed within the TTL; its fds were closed.</summary>
    Expired,

    /// <summary>The fd at this index was claimed before.</summary>
    AlreadyClaimed,

    /// <summary>The transfer has no fd at this index.</summary>
    IndexOutOfRange,

    /// <summary>The fd is not of the expected kind (declared or actual); it was closed.</summary>
    KindMismatch,
}
