using Grpc.Backup.Protocol;
using Grpc.Backup.Protocol.V1;
using Grpc.Backup.Provider;
using Grpc.Core;

namespace Grpc.Backup.Providers.Borg.Internal;

/// <summary>
/// Borg's failures as the contract's codes and reasons, keyed by borg's msgid where it gives one; the failures every
/// provider shares are the SDK's <see cref="ContractErrors"/>.
/// </summary>
internal static class BorgErrors
{
    /// <summary>The status for a failed borg command, by its msgid; <paramref name="what"/> says what we were doing.</summary>
    public static RpcException From(BorgException e, string what)
    {
        ArgumentNullException.ThrowIfNull(e);
        string message = $"{what}: {e.Message}";
        if (e.MessageId is "ConnectionClosed" or "ConnectionClosedWithHint")
        {
            // borg does not always relay ssh's own reason (it may exit before reading ssh's stderr).
            message += " (for ssh:// check that the host is reachable, sshd listens on that port, the key is authorized there and "
                + "borg is installed on the server)";
        }
        return e.MessageId switch
        {
            "PassphraseWrong" or "PasscommandFailure" or "NoPassphraseFailure" or "PasswordRetriesExceeded"
                or "KeyfileNotFoundError" or "KeyfileInvalidError" or "KeyfileMismatchError" or "RepoKeyNotFoundError"
                or "UnsupportedKeyFormatError" or "TAMRequiredError" or "TAMInvalid" =>
                ProviderErrors.Create(ErrorReason.AuthenticationFailed, message),
            "LockTimeout" or "LockFailed" or "LockError" or "LockErrorT" or "NotLocked" or "NotMyLock" =>
                ContractErrors.RepositoryLocked(message + " (another borg client holds the repository lock; retry later)"),
            "Repository.DoesNotExist" or "Repository.InvalidRepository" or "Repository.InvalidRepositoryConfig"
                or "ConnectionClosed" or "ConnectionClosedWithHint" or "PathNotAllowed" or "InvalidRPCMethod"
                or "UnexpectedRPCDataFormatFromServer" or "Repository.ParentPathDoesNotExist" =>
                ProviderErrors.Create(ErrorReason.RepositoryUnreachable, message),
            "Repository.InsufficientFreeSpaceError" or "Repository.StorageQuotaExceeded" =>
                ProviderErrors.Create(ErrorReason.QuotaExceeded, message),
            "Archive.DoesNotExist" => ProviderErrors.Create(ErrorReason.ArchiveNotFound, message),
            "Repository.CheckNeeded" or "Repository.ObjectNotFound" or "IntegrityError" or "Repository.IntegrityError"
                or "Archive.IncompatibleFilesystemEncodingError" =>
                ProviderErrors.Create(ErrorReason.ArchiveCorrupt, message),
            _ when e.ExitCode == 127 => ProviderErrors.Create(ErrorReason.NotReady, message),
            _ => ProviderErrors.Create(ErrorReason.RepositoryUnreachable, message),
        };
    }

    public static RpcException FromState(Exception exception, string what) =>
        ProviderErrors.Create(StatusCode.Unavailable, $"the provider's state directory failed while {what}: {exception.Message}");
}
