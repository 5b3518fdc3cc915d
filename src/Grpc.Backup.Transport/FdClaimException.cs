namespace Grpc.Backup.Transport;

/// <summary>A claim on the <see cref="FdTransferTable"/> failed; <see cref="Failure"/> says why.</summary>
public sealed class FdClaimException : Exception
{
    /// <summary>Creates the exception for a failed claim of (<paramref name="token"/>, <paramref name="index"/>).</summary>
    public FdClaimException(FdClaimFailure failure, FdToken token, int index, string? rejectionReason = null, string? detail = null)
        : base(FormatMessage(failure, token, index, rejectionReason, detail))
    {
        Failure = failure;
        Token = token;
        Index = index;
        RejectionReason = rejectionReason;
    }

    /// <summary>Why the claim failed.</summary>
    public FdClaimFailure Failure { get; }

    /// <summary>The transfer token the claim named.</summary>
    public FdToken Token { get; }

    /// <summary>The fd index the claim named.</summary>
    public int Index { get; }

    /// <summary>For <see cref="FdClaimFailure.Rejected"/>: the receiving rule the transfer broke.</summary>
    public string? RejectionReason { get; }

    private static string FormatMessage(FdClaimFailure failure, FdToken token, int index, string? rejectionReason, string? detail)
    {
        string what = failure switch
        {
            FdClaimFailure.UnknownTransfer => "no such transfer arrived",
            FdClaimFailure.Rejected => $"the transfer was rejected ({rejectionReason}) and its fds closed",
            FdClaimFailure.Expired => "the transfer expired unclaimed and its fds were closed",
            FdClaimFailure.AlreadyClaimed => "the fd was already claimed",
            FdClaimFailure.IndexOutOfRange => "the transfer has no fd at this index",
            FdClaimFailure.KindMismatch => "the fd is not of the expected kind",
            _ => failure.ToString(),
        };
        return detail is null
            ? $"Cannot claim fd {index} of transfer {token}: {what}."
            : $"Cannot claim fd {index} of transfer {token}: {what}: {detail}.";
    }
}
