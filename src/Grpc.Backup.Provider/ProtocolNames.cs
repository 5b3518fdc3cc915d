using System.Text.RegularExpressions;

namespace Grpc.Backup.Provider;

/// <summary>
/// The identifier rules of the contract. Guest ids and device names become path segments and file names here, so they
/// are checked before anything touches the file system. Device names: <see cref="Grpc.Backup.Protocol.DeviceName"/>.
/// </summary>
public static partial class ProtocolNames
{
    /// <summary>backup_id, job_id and restore_id are UUIDs in text form; anything longer than this is not one.</summary>
    public const int MaxOperationIdLength = 128;

    /// <summary>True for a guest id matching [A-Za-z0-9._-]{1,64} that is not "." or "..".</summary>
    public static bool IsValidGuestId(string? value) =>
        value is not null && GuestIdPattern().IsMatch(value) && value is not ("." or "..");

    /// <summary>True for a non-empty operation id of printable ASCII without path or control characters.</summary>
    public static bool IsValidOperationId(string? value) =>
        value is not null && OperationIdPattern().IsMatch(value);

    [GeneratedRegex("^[A-Za-z0-9._-]{1,64}\\z", RegexOptions.CultureInvariant)]
    private static partial Regex GuestIdPattern();

    [GeneratedRegex("^[A-Za-z0-9._:-]{1,128}\\z", RegexOptions.CultureInvariant)]
    private static partial Regex OperationIdPattern();
}
