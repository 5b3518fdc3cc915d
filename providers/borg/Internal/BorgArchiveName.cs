using Grpc.Backup.Protocol;
using Grpc.Backup.Provider;

namespace Grpc.Backup.Providers.Borg.Internal;

/// <summary>
/// An archive as the protocol names it (<c>&lt;guest_id&gt;/&lt;yyyyMMddTHHmmssZ&gt;</c>) and as borg names it
/// (<c>&lt;guest_id&gt;@&lt;yyyyMMddTHHmmssZ&gt;</c>; borg archive names cannot hold '/', and guest ids cannot hold '@').
/// A backup is written as <c>NAME.partial</c> and renamed by BackupCleanup(success), so an unfinished or failed
/// backup is never taken for a complete one.
/// </summary>
internal sealed record BorgArchiveName(string GuestId, string Timestamp)
{
    public const string PartialSuffix = ".partial";

    public string Name => GuestId + "/" + Timestamp;

    public string BorgName => GuestId + "@" + Timestamp;

    public string PartialBorgName => BorgName + PartialSuffix;

    public DateTimeOffset Time => ArchiveTimestamp.TryParse(Timestamp, out DateTimeOffset time) ? time : default;

    public static BorgArchiveName Create(string guestId, DateTimeOffset time) => new(guestId, ArchiveTimestamp.Format(time));

    /// <summary>Parses a protocol archive name from a request: INVALID_ARGUMENT or NOT_FOUND when it cannot be ours.</summary>
    public static BorgArchiveName Resolve(string? name)
    {
        if (ArchiveName.Check(name) is { } problem)
        {
            throw ContractErrors.InvalidArgument(problem);
        }
        string[] parts = name!.Split('/');
        if (parts.Length != 2 || !ProtocolNames.IsValidGuestId(parts[0]) || !ArchiveTimestamp.TryParse(parts[1], out _))
        {
            throw ContractErrors.ArchiveNotFound(name);
        }
        return new BorgArchiveName(parts[0], parts[1]);
    }

    /// <summary>A complete archive from <c>borg list</c>; null for partial ones and archives that are not ours.</summary>
    public static BorgArchiveName? FromBorg(string borgName)
    {
        int at = borgName.LastIndexOf('@');
        if (at <= 0)
        {
            return null;
        }
        string guest = borgName[..at];
        string timestamp = borgName[(at + 1)..];
        return ProtocolNames.IsValidGuestId(guest) && ArchiveTimestamp.TryParse(timestamp, out _) ? new BorgArchiveName(guest, timestamp) : null;
    }
}
