namespace Grpc.Backup.Qemu;

/// <summary>The error classes QEMU still uses in <c>{"error":{"class":...}}</c> replies.</summary>
public static class QmpErrorClass
{
    public const string GenericError = nameof(GenericError);
    public const string CommandNotFound = nameof(CommandNotFound);
    public const string DeviceNotActive = nameof(DeviceNotActive);
    public const string DeviceNotFound = nameof(DeviceNotFound);
    public const string KVMMissingCap = nameof(KVMMissingCap);
}
