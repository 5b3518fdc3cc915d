using Grpc.Backup.Orchestrator.Inventory;

namespace Grpc.Backup.Service.Internal.Configuration;

/// <summary>A webhook: an HTTP POST of the job report as JSON (see <see cref="NotificationTarget"/>).</summary>
internal sealed record WebhookTarget(string Name, Uri? Url, string? UrlFile, string? HeaderFile, TimeSpan Timeout) : NotificationTarget(Name)
{
    internal static WebhookTarget Parse(string name, string file, IReadOnlyDictionary<string, ConfigLine> values)
    {
        RefuseUnknown(values, "url", "url-file", "header-file", "timeout");
        ConfigLine? urlLine = Optional(values, "url"), urlFileLine = Optional(values, "url-file");
        Uri? url = urlLine is { } u ? ConfigValues.HttpUrl(u) : null;
        string? urlFile = urlFileLine is { } f ? ConfigValues.TrustedFile(f, f.Value, executable: false, secret: true) : null;
        if ((url is null) == (urlFile is null))
        {
            throw new ConfigException(file, urlLine?.Number ?? urlFileLine?.Number ?? 0, "a webhook needs exactly one of 'url:' or 'url-file:'");
        }
        if (urlFile is not null)
        {
            // Checked now, so a broken secret stops the service at start-up rather than the first job's report.
            ReadUrl(urlFile, urlFileLine);
        }
        ConfigLine? headerLine = Optional(values, "header-file");
        string? headerFile = headerLine is { } h ? ConfigValues.TrustedFile(h, h.Value, executable: false, secret: true) : null;
        if (headerFile is not null)
        {
            ReadHeaders(headerFile, headerLine);
        }
        TimeSpan timeout = TimeSpan.FromSeconds(10);
        if (values.TryGetValue("timeout", out ConfigLine timeoutLine))
        {
            uint seconds = ConfigValues.Count(timeoutLine, 300);
            timeout = seconds > 0 ? TimeSpan.FromSeconds(seconds) : throw timeoutLine.Error("timeout must be at least 1 second");
        }
        return new WebhookTarget(name, url, urlFile, headerFile, timeout);
    }

    /// <summary>The URL, read when a report is sent, so a rotated secret needs no restart.</summary>
    public Uri ResolveUrl() => Url ?? ReadUrl(UrlFile!, null);

    public IReadOnlyList<KeyValuePair<string, string>> ResolveHeaders() => HeaderFile is null ? [] : ReadHeaders(HeaderFile, null);

    private static Uri ReadUrl(string path, ConfigLine? line)
    {
        return ConfigValues.TryHttpUrl(File.ReadAllText(path).Trim(), out Uri? url)
            ? url
            : throw Problem(line, $"{path} does not hold one http:// or https:// URL");
    }

    private static List<KeyValuePair<string, string>> ReadHeaders(string path, ConfigLine? line)
    {
        var headers = new List<KeyValuePair<string, string>>();
        int number = 0;
        foreach (string raw in File.ReadAllLines(path))
        {
            number++;
            if (raw.Trim().Length == 0 || raw.TrimStart().StartsWith('#'))
            {
                continue;
            }
            int colon = raw.IndexOf(':', StringComparison.Ordinal);
            string headerName = colon > 0 ? raw[..colon].Trim() : "";
            // A token: no separators or controls (RFC 9110), and never a header that frames the request.
            if (headerName.Length == 0 || headerName.Any(c => c <= ' ' || c >= 127 || "()<>@,;:\\\"/[]?={}".Contains(c))
                || raw[(colon + 1)..].Any(c => c < ' ' && c != '\t')
                || headerName.Equals("Content-Length", StringComparison.OrdinalIgnoreCase)
                || headerName.Equals("Host", StringComparison.OrdinalIgnoreCase)
                || headerName.Equals("Transfer-Encoding", StringComparison.OrdinalIgnoreCase))
            {
                // The line's content is a secret: name the line, not its text.
                throw Problem(line, $"{path} line {number} is not a 'Name: value' header this service may send");
            }
            headers.Add(new(headerName, raw[(colon + 1)..].Trim()));
        }
        return headers;
    }

    private static Exception Problem(ConfigLine? line, string message) =>
        line is { } known ? known.Error(message) : new InvalidDataException(message);
}
