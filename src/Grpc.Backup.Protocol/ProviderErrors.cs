using Google.Protobuf.WellKnownTypes;
using Google.Rpc;
using Grpc.Backup.Protocol.V1;
using Grpc.Core;

namespace Grpc.Backup.Protocol;

/// <summary>
/// Builds and reads the protocol's machine-readable failures: a gRPC status whose details hold a
/// <c>google.rpc.ErrorInfo</c> with domain <see cref="ProtocolVersion.ErrorDomain"/> and a reason from
/// <see cref="ErrorReason"/>.
/// </summary>
public static class ProviderErrors
{
    private const string ReasonPrefix = "ERROR_REASON_";

    private static readonly Google.Protobuf.Reflection.EnumDescriptor ReasonDescriptor =
        TypesReflection.Descriptor.FindTypeByName<Google.Protobuf.Reflection.EnumDescriptor>("ErrorReason");

    /// <summary>
    /// The one status code of each reason, for every provider and every RPC (protos/README.md, "General errors"): a
    /// host may act on the reason alone, so the code must never contradict it. The conformance kit checks it.
    /// </summary>
    public static StatusCode StatusOf(ErrorReason reason) => reason switch
    {
        ErrorReason.ArchiveNotFound or ErrorReason.UnknownOperation => StatusCode.NotFound,
        ErrorReason.MechanismNotSupported or ErrorReason.BackupProtected or ErrorReason.SizeMismatch
            or ErrorReason.OperationInProgress => StatusCode.FailedPrecondition,
        ErrorReason.FdTransferUnknown or ErrorReason.FdTransferRejected or ErrorReason.FdTransferExpired
            or ErrorReason.FdAlreadyClaimed or ErrorReason.FdKindMismatch or ErrorReason.InvalidArchiveName => StatusCode.InvalidArgument,
        ErrorReason.RepositoryLocked or ErrorReason.SnapshotBroken => StatusCode.Aborted,
        ErrorReason.RepositoryUnreachable or ErrorReason.NotReady => StatusCode.Unavailable,
        ErrorReason.AuthenticationFailed => StatusCode.Unauthenticated,
        ErrorReason.QuotaExceeded => StatusCode.ResourceExhausted,
        ErrorReason.ArchiveCorrupt => StatusCode.DataLoss,
        _ => throw new ArgumentOutOfRangeException(nameof(reason), reason, "no status code is defined for this reason"),
    };

    /// <summary>
    /// Creates the exception a service throws to fail a call with <paramref name="reason"/>, with the reason's one
    /// status code (<see cref="StatusOf"/>).
    /// </summary>
    public static RpcException Create(ErrorReason reason, string message, IReadOnlyDictionary<string, string>? metadata = null)
    {
        StatusCode code = StatusOf(reason);
        var info = new ErrorInfo { Domain = ProtocolVersion.ErrorDomain, Reason = ReasonName(reason) };
        if (metadata is not null)
        {
            foreach (var (key, value) in metadata)
            {
                info.Metadata[key] = value;
            }
        }
        var status = new Google.Rpc.Status { Code = (int)code, Message = message, Details = { Any.Pack(info) } };
        return status.ToRpcException();
    }

    /// <summary>Creates a failure without a machine-readable reason.</summary>
    public static RpcException Create(StatusCode code, string message) => new(new Grpc.Core.Status(code, message));

    /// <summary>The wire name of a reason: the enum value name without its prefix, e.g. <c>ARCHIVE_NOT_FOUND</c>.</summary>
    public static string ReasonName(ErrorReason reason)
    {
        string original = ReasonDescriptor.FindValueByNumber((int)reason)?.Name
            ?? throw new ArgumentOutOfRangeException(nameof(reason), reason, "not a known ErrorReason");
        return original.StartsWith(ReasonPrefix, StringComparison.Ordinal) ? original[ReasonPrefix.Length..] : original;
    }

    /// <summary>
    /// The reason a failed call carries, or null if it has none (or one from another domain). Unknown reason names
    /// from a newer provider come back as <see cref="ErrorReason.Unspecified"/> with the raw name in <paramref name="rawReason"/>.
    /// </summary>
    public static ErrorReason? GetReason(this RpcException exception, out string? rawReason)
    {
        ArgumentNullException.ThrowIfNull(exception);
        rawReason = null;
        Google.Rpc.Status? status;
        try
        {
            status = exception.GetRpcStatus();
        }
        catch (Google.Protobuf.InvalidProtocolBufferException)
        {
            // A provider that sends garbage in grpc-status-details-bin must not turn a clean failure into a crash.
            return null;
        }
        ErrorInfo? info = status?.GetDetail<ErrorInfo>();
        if (info is null || info.Domain != ProtocolVersion.ErrorDomain)
        {
            return null;
        }
        rawReason = info.Reason;
        var value = ReasonDescriptor.FindValueByName(ReasonPrefix + info.Reason);
        return value is null ? ErrorReason.Unspecified : (ErrorReason)value.Number;
    }

    /// <summary>The reason a failed call carries, or null.</summary>
    public static ErrorReason? GetReason(this RpcException exception) => exception.GetReason(out _);
}
