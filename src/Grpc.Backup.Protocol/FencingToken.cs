using System.Globalization;

namespace Grpc.Backup.Protocol;

/// <summary>
/// A cluster backup slot's fencing token as it travels in JobInit's options (protos/README.md "Fencing tokens"):
/// <c>fencing-token: SLOT@REVISION</c>. SLOT names the slot (<c>storage/nfs1/0</c>), REVISION is the etcd revision
/// that created its key. A provider that honours it remembers the newest revision per slot and refuses an older one:
/// the older holder lost its lease (it paused, or its host died) and another host holds the slot now.
/// </summary>
public readonly record struct FencingToken(string Slot, long Revision)
{
    /// <summary>The JobInit option that carries the token. Absent in single-host operation.</summary>
    public const string OptionName = "fencing-token";

    public static string Format(string slot, long revision) =>
        string.Create(CultureInfo.InvariantCulture, $"{slot}@{revision}");

    public override string ToString() => Format(Slot, Revision);

    /// <summary>
    /// Parses <c>SLOT@REVISION</c>: SLOT is 1 to 128 characters of [A-Za-z0-9._-] in '/'-separated segments, none
    /// empty, '.' or '..' (so it can name a file under the repository); REVISION is a positive decimal.
    /// </summary>
    public static bool TryParse(string? text, out FencingToken token)
    {
        token = default;
        int at = text?.LastIndexOf('@') ?? -1;
        if (text is null || at <= 0 || at > 128)
        {
            return false;
        }
        string slot = text[..at];
        if (!long.TryParse(text.AsSpan(at + 1), NumberStyles.None, CultureInfo.InvariantCulture, out long revision) || revision <= 0)
        {
            return false;
        }
        foreach (string segment in slot.Split('/'))
        {
            if (segment.Length == 0 || segment is "." or ".." || !segment.All(c => char.IsAsciiLetterOrDigit(c) || c is '.' or '_' or '-'))
            {
                return false;
            }
        }
        token = new FencingToken(slot, revision);
        return true;
    }
}
