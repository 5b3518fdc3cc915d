namespace Grpc.Backup.Protocol;

/// <summary>
/// The device-name rule of the contract (<c>VolumeSize.device_name</c>): <c>[A-Za-z0-9._+=-]{1,128}</c>. Device names
/// become file names and NBD export names on both sides, so both check them.
/// </summary>
public static class DeviceName
{
    public const int MaxLength = 128;

    public static bool IsValid(string? name) =>
        !string.IsNullOrEmpty(name) && name.Length <= MaxLength && name != "." && name != ".."
        && name.All(c => c is (>= 'a' and <= 'z') or (>= 'A' and <= 'Z') or (>= '0' and <= '9') or '.' or '_' or '+' or '=' or '-');
}
