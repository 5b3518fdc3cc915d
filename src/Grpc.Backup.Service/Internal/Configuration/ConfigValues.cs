using System.Globalization;
using Grpc.Backup.Orchestrator.Inventory;

namespace Grpc.Backup.Service.Internal.Configuration;

/// <summary>Typed readers for the values of storage, job and host files; each error names the line.</summary>
internal static class ConfigValues
{
    public static string Single(ConfigLine line, string? existing) =>
        existing is null ? line.Value : throw line.Error($"'{line.Key}' is given twice");

    public static bool Bool(ConfigLine line) => line.Value switch
    {
        "yes" or "1" or "true" => true,
        "no" or "0" or "false" => false,
        _ => throw line.Error($"{line.Key}: expected yes or no, got '{line.Value}'"),
    };

    public static uint Count(ConfigLine line, uint max) =>
        uint.TryParse(line.Value, NumberStyles.None, CultureInfo.InvariantCulture, out uint value) && value <= max
            ? value
            : throw line.Error($"{line.Key}: expected a whole number from 0 to {max}, got '{line.Value}'");

    /// <summary>A byte count with an optional binary suffix: 512, 64K, 50M, 1G (K = 1024).</summary>
    public static ulong Bytes(ConfigLine line)
    {
        string text = line.Value;
        ulong unit = 1;
        if (text.Length > 1 && char.ToUpperInvariant(text[^1]) is 'K' or 'M' or 'G' or 'T')
        {
            unit = char.ToUpperInvariant(text[^1]) switch { 'K' => 1UL << 10, 'M' => 1UL << 20, 'G' => 1UL << 30, _ => 1UL << 40 };
            text = text[..^1];
        }
        if (!ulong.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out ulong value) || value > ulong.MaxValue / unit)
        {
            throw line.Error($"{line.Key}: expected bytes such as 1048576, 64K, 50M or 1G, got '{line.Value}'");
        }
        return value * unit;
    }

    public static string AbsolutePath(ConfigLine line, string path) =>
        path.Length > 1 && path[0] == '/' && !path.Contains('\0', StringComparison.Ordinal) && !path.Split('/').Contains("..")
            ? path
            : throw line.Error($"'{path}' is not an absolute path without '..'");

    /// <summary>An absolute http or https URL. It is never logged: it may carry a token in its query.</summary>
    public static Uri HttpUrl(ConfigLine line) =>
        TryHttpUrl(line.Value, out Uri? url) ? url : throw line.Error($"{line.Key}: expected an http:// or https:// URL");

    public static bool TryHttpUrl(string text, [System.Diagnostics.CodeAnalysis.NotNullWhen(true)] out Uri? url) =>
        Uri.TryCreate(text, UriKind.Absolute, out url) && url.Scheme is "http" or "https" && url.Host.Length > 0;

    public static IReadOnlyList<string> Words(ConfigLine line) =>
        line.Value.Split([' ', ','], StringSplitOptions.RemoveEmptyEntries);

    /// <summary>
    /// A file the service executes or trusts (a hook script, a secret): it must exist, be a regular file owned by
    /// root and not writable by group or others, or anyone who can change it could run code as root or read a secret.
    /// </summary>
    public static string TrustedFile(ConfigLine line, string path, bool executable, bool secret)
    {
        AbsolutePath(line, path);
        if (TrustedFileProblem(path, executable, secret) is { } problem)
        {
            throw line.Error(problem);
        }
        return path;
    }

    /// <summary>Why <paramref name="path"/> (absolute) is not a file the service may trust as <see cref="TrustedFile"/> says; null when it is.</summary>
    public static string? TrustedFileProblem(string path, bool executable, bool secret)
    {
        var info = new FileInfo(path);
        if (!info.Exists || info.LinkTarget is not null)
        {
            return $"{path} does not exist or is a symbolic link";
        }
        UnixFileMode mode = info.UnixFileMode;
        if ((mode & (UnixFileMode.GroupWrite | UnixFileMode.OtherWrite)) != 0)
        {
            return $"{path} is writable by group or others (mode {Convert.ToString((int)mode, 8)}); it must be 0755 or stricter";
        }
        if (secret && (mode & (UnixFileMode.GroupRead | UnixFileMode.OtherRead | UnixFileMode.GroupExecute | UnixFileMode.OtherExecute)) != 0)
        {
            return $"secret file {path} is readable by group or others (mode {Convert.ToString((int)mode, 8)}); it must be 0600 or 0400";
        }
        if (executable && (mode & UnixFileMode.UserExecute) == 0)
        {
            return $"{path} is not executable";
        }
        return Internal.Interop.FileOwner.Of(path) != 0 ? $"{path} is not owned by root" : null;
    }
}
