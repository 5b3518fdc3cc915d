using System.Globalization;

namespace Grpc.Backup.Provider;

/// <summary>
/// The UTC timestamp that names an archive directory, <c>yyyyMMddTHHmmssZ</c>: sortable as text, valid as an archive
/// name segment, and free of ':' so it is a portable file name.
/// </summary>
public static class ArchiveTimestamp
{
    private const string Pattern = "yyyyMMdd'T'HHmmss'Z'";

    public static string Format(DateTimeOffset time) =>
        time.UtcDateTime.ToString(Pattern, CultureInfo.InvariantCulture);

    public static bool TryParse(string? text, out DateTimeOffset time)
    {
        time = default;
        if (text is null || text.Length != 16)
        {
            return false;
        }
        if (!DateTime.TryParseExact(text, Pattern, CultureInfo.InvariantCulture,
                DateTimeStyles.AdjustToUniversal | DateTimeStyles.AssumeUniversal, out DateTime parsed))
        {
            return false;
        }
        time = new DateTimeOffset(parsed, TimeSpan.Zero);
        return true;
    }
}
