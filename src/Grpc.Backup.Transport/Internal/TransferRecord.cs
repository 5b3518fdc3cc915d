using Microsoft.Win32.SafeHandles;

namespace Grpc.Backup.Transport.Internal;

/// <summary>
/// One token in the <see cref="FdTransferTable"/>: a pending transfer with its fds, or the
/// tombstone of a finished one, kept so that its token is never accepted again and a late
/// claim gets a precise answer. Mutated only under the table's lock.
/// </summary>
internal sealed class TransferRecord
{
    private TransferRecord(FdToken token, TransferState state, SafeFileHandle?[]? fds, FdKind[] kinds, string? rejectionReason)
    {
        Token = token;
        State = state;
        Fds = fds;
        Kinds = kinds;
        Remaining = fds?.Length ?? 0;
        RejectionReason = rejectionReason;
    }

    public FdToken Token { get; }

    public TransferState State { get; set; }

    /// <summary>The unclaimed fds by index (null once claimed); null when none are held any more.</summary>
    public SafeFileHandle?[]? Fds { get; set; }

    /// <summary>The declared kinds; also tells a late claim whether its index was ever valid.</summary>
    public FdKind[] Kinds { get; }

    public int Remaining { get; set; }

    public string? RejectionReason { get; }

    public ITimer? ExpiryTimer { get; set; }

    /// <summary>When the record stopped holding fds; tombstones are pruned a while after.</summary>
    public DateTimeOffset SettledAt { get; set; }

    public static TransferRecord Pending(FdToken token, SafeFileHandle[] fds, FdKind[] kinds) =>
        new(token, TransferState.Pending, fds, kinds, null);

    public static TransferRecord Rejected(FdToken token, string reason, DateTimeOffset now) =>
        new(token, TransferState.Rejected, null, [], reason) { SettledAt = now };

    /// <summary>Leaves the pending state: stops the timer and hands back the fds still held.</summary>
    public List<SafeFileHandle> Settle(TransferState state, DateTimeOffset now)
    {
        var unclaimed = new List<SafeFileHandle>();
        foreach (SafeFileHandle? fd in Fds ?? [])
        {
            if (fd is not null)
            {
                unclaimed.Add(fd);
            }
        }

        ExpiryTimer?.Dispose();
        ExpiryTimer = null;
        Fds = null;
        Remaining = 0;
        State = state;
        SettledAt = now;
        return unclaimed;
    }
}
