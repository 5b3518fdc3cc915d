using Grpc.Backup.Protocol;
using Grpc.Backup.Protocol.V1;
using Grpc.Core;

namespace Grpc.Backup.Provider;

/// <summary>Failures of the host's snapshot export, as the contract names them.</summary>
public static class SnapshotErrors
{
    /// <summary>True for what an NBD operation throws when the server or the connection failed.</summary>
    public static bool IsNbdFailure(Exception exception) => exception is IOException or ObjectDisposedException;

    public static RpcException Broken(string device, string what, Exception exception) =>
        ProviderErrors.Create(ErrorReason.SnapshotBroken,
            $"the snapshot of {device} broke while {what}: {exception.Message}");
}
