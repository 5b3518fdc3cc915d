using Grpc.Backup.Protocol;
using Grpc.Backup.Protocol.V1;
using Grpc.Core;

namespace Grpc.Backup.Provider;

/// <summary>
/// The failures every provider answers, with the contract's codes and reasons (<see cref="ProviderErrors"/> builds
/// them; this names them once for all C# providers).
/// </summary>
public static class ContractErrors
{
    private const int Enospc = 28;
    private const int Edquot = 122;

    public static RpcException InvalidArgument(string message) => ProviderErrors.Create(StatusCode.InvalidArgument, message);

    public static RpcException ArchiveNotFound(string name) =>
        ProviderErrors.Create(ErrorReason.ArchiveNotFound, $"archive '{name}' does not exist");

    public static RpcException UnknownBackup(string backupId) =>
        ProviderErrors.Create(ErrorReason.UnknownOperation,
            $"backup_id '{backupId}' is unknown to this provider (never started, or lost in a restart)");

    public static RpcException UnknownRestore(string restoreId) =>
        ProviderErrors.Create(ErrorReason.UnknownOperation,
            $"restore_id '{restoreId}' is unknown: call the restore's Init first");

    public static RpcException ArchiveCorrupt(string name, string why) =>
        ProviderErrors.Create(ErrorReason.ArchiveCorrupt, $"archive '{name}' is damaged: {why}");

    public static RpcException RepositoryLocked(string message) =>
        ProviderErrors.Create(ErrorReason.RepositoryLocked, message);

    /// <summary>
    /// True for the exceptions that mean a file system the provider stores into failed, a QEMU tool working on it
    /// (<see cref="Transport.ExternalProcessException"/>, an IOException) included.
    /// </summary>
    public static bool IsStorageFailure(Exception exception) =>
        exception is IOException or UnauthorizedAccessException;

    /// <summary>
    /// The status for a failure of a repository's file system: full or over quota is QUOTA_EXCEEDED, anything else
    /// REPOSITORY_UNREACHABLE (a mount that went away, permissions changed under us).
    /// </summary>
    public static RpcException FromStorage(Exception exception, string what)
    {
        ArgumentNullException.ThrowIfNull(exception);
        if (exception.HResult is Enospc or Edquot)
        {
            return ProviderErrors.Create(ErrorReason.QuotaExceeded,
                $"the repository is full while {what}: {exception.Message}");
        }
        return ProviderErrors.Create(ErrorReason.RepositoryUnreachable,
            $"the repository failed while {what}: {exception.Message}");
    }
}
