using System.Diagnostics.CodeAnalysis;
using System.Globalization;
using System.Text;

namespace Grpc.Backup.Nbd;

/// <summary>
/// An <c>nbd+unix:///EXPORT?socket=PATH</c> URI (the NBD URI format, Unix-socket form).
/// Parsing is strict: other schemes (TCP, TLS, vsock), hosts, unknown query parameters,
/// fragments and malformed percent-encoding are rejected, because guessing would connect
/// somewhere the caller did not mean.
/// </summary>
public sealed class NbdUri
{
    private const string Scheme = "nbd+unix://";

    private static readonly UTF8Encoding s_strictUtf8 = new(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true);

    public NbdUri(string socketPath, string exportName)
    {
        ArgumentException.ThrowIfNullOrEmpty(socketPath);
        ArgumentNullException.ThrowIfNull(exportName);
        SocketPath = socketPath;
        ExportName = exportName;
    }

    /// <summary>Path of the server's Unix domain socket.</summary>
    public string SocketPath { get; }

    /// <summary>Export name; empty for the server's default export.</summary>
    public string ExportName { get; }

    /// <summary>Parses <paramref name="uri"/>; throws <see cref="FormatException"/> saying what is wrong.</summary>
    public static NbdUri Parse(string uri)
    {
        ArgumentNullException.ThrowIfNull(uri);
        return TryParse(uri, out var result, out var error) ? result : throw new FormatException(error);
    }

    public static bool TryParse([NotNullWhen(true)] string? uri, [NotNullWhen(true)] out NbdUri? result) =>
        TryParse(uri, out result, out _);

    private static bool TryParse(string? uri, [NotNullWhen(true)] out NbdUri? result, out string error)
    {
        result = null;
        if (string.IsNullOrEmpty(uri))
        {
            error = "The NBD URI is empty.";
            return false;
        }

        if (!uri.StartsWith(Scheme, StringComparison.OrdinalIgnoreCase))
        {
            var colon = uri.IndexOf(':', StringComparison.Ordinal);
            var scheme = colon > 0 ? uri[..colon] : uri;
            error = scheme.ToUpperInvariant() switch
            {
                "NBD" => $"Unsupported NBD URI scheme '{scheme}' in '{uri}': TCP is not supported, only nbd+unix:///EXPORT?socket=PATH.",
                "NBDS" or "NBDS+UNIX" => $"Unsupported NBD URI scheme '{scheme}' in '{uri}': TLS is not supported, only nbd+unix:///EXPORT?socket=PATH.",
                _ => $"Unsupported URI scheme '{scheme}' in '{uri}': expected nbd+unix:///EXPORT?socket=PATH.",
            };
            return false;
        }

        var rest = uri[Scheme.Length..];
        if (rest.Contains('#', StringComparison.Ordinal))
        {
            error = $"NBD URI '{uri}' must not contain a fragment.";
            return false;
        }

        var queryStart = rest.IndexOf('?', StringComparison.Ordinal);
        var beforeQuery = queryStart < 0 ? rest : rest[..queryStart];
        var query = queryStart < 0 ? string.Empty : rest[(queryStart + 1)..];

        var pathStart = beforeQuery.IndexOf('/', StringComparison.Ordinal);
        var authority = pathStart < 0 ? beforeQuery : beforeQuery[..pathStart];
        if (authority.Length != 0)
        {
            error = $"NBD URI '{uri}' must not name a host ('{authority}'); nbd+unix URIs start with nbd+unix:///.";
            return false;
        }

        var exportName = string.Empty;
        if (pathStart >= 0 && !TryDecode(beforeQuery[(pathStart + 1)..], out exportName))
        {
            error = $"NBD URI '{uri}' has a malformed percent-encoded export name.";
            return false;
        }

        string? socketPath = null;
        foreach (var parameter in query.Split('&', StringSplitOptions.RemoveEmptyEntries))
        {
            var equals = parameter.IndexOf('=', StringComparison.Ordinal);
            var rawName = equals < 0 ? parameter : parameter[..equals];
            if (!TryDecode(rawName, out var name) || !TryDecode(equals < 0 ? string.Empty : parameter[(equals + 1)..], out var value))
            {
                error = $"NBD URI '{uri}' has a malformed percent-encoded query parameter.";
                return false;
            }

            if (name != "socket")
            {
                error = $"NBD URI '{uri}' has unsupported query parameter '{name}'; only 'socket' is supported.";
                return false;
            }

            if (socketPath is not null)
            {
                error = $"NBD URI '{uri}' names the socket more than once.";
                return false;
            }

            socketPath = value;
        }

        if (string.IsNullOrEmpty(socketPath))
        {
            error = $"NBD URI '{uri}' lacks the required socket=PATH query parameter.";
            return false;
        }

        result = new NbdUri(socketPath, exportName);
        error = string.Empty;
        return true;
    }

    /// <summary>Strict percent-decoding: every '%' must start a valid escape, the result valid UTF-8.</summary>
    private static bool TryDecode(string text, out string decoded)
    {
        decoded = text;
        if (!text.Contains('%', StringComparison.Ordinal))
        {
            return true;
        }

        var bytes = new List<byte>(text.Length);
        for (var i = 0; i < text.Length; i++)
        {
            if (text[i] != '%')
            {
                bytes.AddRange(Encoding.UTF8.GetBytes(text[i].ToString()));
                continue;
            }

            if (i + 2 >= text.Length ||
                !byte.TryParse(text.AsSpan(i + 1, 2), NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out var value))
            {
                return false;
            }

            bytes.Add(value);
            i += 2;
        }

        try
        {
            decoded = s_strictUtf8.GetString(bytes.ToArray());
            return true;
        }
        catch (DecoderFallbackException)
        {
            return false;
        }
    }

    /// <summary>The canonical URI form, e.g. <c>nbd+unix:///disk0?socket=/run/nbd.sock</c>.</summary>
    public override string ToString() =>
        $"{Scheme}/{Escape(ExportName)}?socket={Escape(SocketPath)}";

    /// <summary>Escapes what would change the parse; '/' stays readable.</summary>
    private static string Escape(string value) => Uri.EscapeDataString(value).Replace("%2F", "/", StringComparison.Ordinal);
}
