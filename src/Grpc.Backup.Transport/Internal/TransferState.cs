namespace Grpc.Backup.Transport.Internal;

/// <summary>Where a transfer is in its life in the <see cref="FdTransferTable"/>.</summary>
internal enum TransferState
{
    /// <summary>Holds at least one unclaimed fd; its TTL timer runs.</summary>
    Pending,

    /// <summary>Every fd was claimed.</summary>
    Completed,

    /// <summary>Broke a receiving rule; its fds were closed on arrival.</summary>
    Rejected,

    /// <summary>Reached its TTL; its unclaimed fds were closed.</summary>
    Expired,
}
