using System.Text;

namespace Grpc.Backup.Protocol;

/// <summary>
/// Makes text a provider chose (log messages, error details, names in errors) safe for a log line or a terminal:
/// control characters and escape sequences (ANSI colours, cursor moves, OSC titles) cannot reach either, line breaks
/// cannot forge a second log line, and the length is bounded.
/// </summary>
public static class ProviderText
{
    /// <summary>The default cap: longer text is cut and marked, so one message cannot flood a log.</summary>
    public const int DefaultMaxLength = 4096;

    /// <summary>
    /// Returns <paramref name="text"/> on one line: ESC sequences are removed, other C0/C1 controls and DEL become
    /// <c>\xNN</c>, line breaks and tabs become spaces, and anything beyond <paramref name="maxLength"/> characters is
    /// cut with a marker.
    /// </summary>
    public static string Sanitize(string? text, int maxLength = DefaultMaxLength)
    {
        if (string.IsNullOrEmpty(text))
        {
            return "";
        }
        if (!NeedsWork(text, maxLength))
        {
            return text;
        }
        var builder = new StringBuilder(Math.Min(text.Length, maxLength) + 16);
        for (int i = 0; i < text.Length && builder.Length < maxLength; i++)
        {
            char c = text[i];
            if (c == '\u001b' || c == '\u009b')
            {
                i = SkipEscape(text, i);
            }
            else if (c is '\n' or '\r' or '\t')
            {
                builder.Append(' ');
            }
            else if (char.IsControl(c))
            {
                builder.Append(System.Globalization.CultureInfo.InvariantCulture, $"\\x{(int)c:x2}");
            }
            else
            {
                builder.Append(c);
            }
        }
        if (builder.Length >= maxLength || text.Length > maxLength)
        {
            builder.Length = Math.Min(builder.Length, maxLength);
            builder.Append(" [cut]");
        }
        return builder.ToString();
    }

    private static bool NeedsWork(string text, int maxLength)
    {
        if (text.Length > maxLength)
        {
            return true;
        }
        foreach (char c in text)
        {
            if (char.IsControl(c))
            {
                return true;
            }
        }
        return false;
    }

    /// <summary>Returns the index of the last character of the escape sequence starting at <paramref name="start"/>.</summary>
    private static int SkipEscape(string text, int start)
    {
        int i = start + 1;
        bool csi = text[start] == '\u009b';
        if (!csi && i < text.Length && text[i] == '[')
        {
            csi = true;
            i++;
        }
        else if (!csi && i < text.Length && text[i] == ']')
        {
            // OSC: up to BEL or ST (ESC \).
            for (i++; i < text.Length; i++)
            {
                if (text[i] == '\u0007')
                {
                    return i;
                }
                if (text[i] == '\u001b' && i + 1 < text.Length && text[i + 1] == '\\')
                {
                    return i + 1;
                }
            }
            return text.Length - 1;
        }
        if (csi)
        {
            // CSI: parameter and intermediate bytes, then one final byte in @..~.
            for (; i < text.Length; i++)
            {
                if (text[i] is >= '@' and <= '~')
                {
                    return i;
                }
            }
            return text.Length - 1;
        }
        // A two-character escape (ESC c, ESC 7, ...).
        return Math.Min(start + 1, text.Length - 1);
    }
}
