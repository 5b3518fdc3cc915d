using Google.Protobuf;
using Grpc.Backup.Protocol.V1;
using Grpc.Backup.Transport;
using Grpc.Core;
using TransportFdKind = Grpc.Backup.Transport.FdKind;
using WireFdKind = Grpc.Backup.Protocol.V1.FdKind;

namespace Grpc.Backup.Protocol;

/// <summary>Maps the wire <see cref="FdRef"/> to the transport's token, index and kind, and claim failures to statuses.</summary>
public static class FdRefConversions
{
    /// <summary>The reference to fd <paramref name="index"/> of the transfer <paramref name="token"/>.</summary>
    public static FdRef ToFdRef(this FdToken token, int index, TransportFdKind kind) => new()
    {
        TransferToken = ByteString.CopyFrom(token.ToByteArray()),
        Index = checked((uint)index),
        Kind = (WireFdKind)(int)kind,
    };

    /// <summary>The transport kind of a wire kind; throws INVALID_ARGUMENT for an unknown or unspecified kind.</summary>
    public static TransportFdKind ToTransportKind(this WireFdKind kind) => kind switch
    {
        WireFdKind.File => TransportFdKind.File,
        WireFdKind.BlockDevice => TransportFdKind.BlockDevice,
        WireFdKind.NbdSocket => TransportFdKind.NbdSocket,
        WireFdKind.Pipe => TransportFdKind.Pipe,
        _ => throw ProviderErrors.Create(StatusCode.InvalidArgument, $"FdRef has no valid kind ({kind})"),
    };

    /// <summary>
    /// Claims the fd an <see cref="FdRef"/> names from <paramref name="inbox"/>. Failures become the statuses the
    /// contract names (INVALID_ARGUMENT with an FD_* reason), so a service can let them propagate.
    /// </summary>
    public static async ValueTask<PassedFd> ClaimAsync(this FdTransferTable inbox, FdRef? fdRef, TimeSpan waitForArrival,
        CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(inbox);
        if (fdRef is null)
        {
            throw ProviderErrors.Create(StatusCode.InvalidArgument, "a required FdRef is missing");
        }
        FdToken token;
        try
        {
            token = FdToken.FromBytes(fdRef.TransferToken.Span);
        }
        catch (ArgumentException e)
        {
            throw ProviderErrors.Create(StatusCode.InvalidArgument, $"FdRef.transfer_token is not valid: {e.Message}");
        }
        try
        {
            return await inbox.ClaimAsync(token, checked((int)fdRef.Index), fdRef.Kind.ToTransportKind(), waitForArrival,
                cancellationToken);
        }
        catch (FdClaimException e)
        {
            throw ToRpcException(e);
        }
    }

    /// <summary>The status for a failed claim.</summary>
    public static RpcException ToRpcException(FdClaimException exception)
    {
        ArgumentNullException.ThrowIfNull(exception);
        ErrorReason reason = exception.Failure switch
        {
            FdClaimFailure.UnknownTransfer => ErrorReason.FdTransferUnknown,
            FdClaimFailure.Rejected => ErrorReason.FdTransferRejected,
            FdClaimFailure.Expired => ErrorReason.FdTransferExpired,
            FdClaimFailure.AlreadyClaimed or FdClaimFailure.IndexOutOfRange => ErrorReason.FdAlreadyClaimed,
            FdClaimFailure.KindMismatch => ErrorReason.FdKindMismatch,
            _ => ErrorReason.FdTransferUnknown,
        };
        return ProviderErrors.Create(reason, exception.Message);
    }
}
