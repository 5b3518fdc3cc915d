namespace Grpc.Backup.Protocol;

/// <summary>
/// A provider endpoint as written on the command line and in configuration: <c>unix:PATH</c> (or <c>unix://PATH</c>).
/// The fd sideband lives beside it at <see cref="SidebandPath"/> (protos/README.md "Endpoints").
/// </summary>
public sealed record ProviderEndpoint
{
    /// <summary>The suffix that turns the gRPC socket path into the sideband socket path.</summary>
    public const string SidebandSuffix = ".fds";

    private ProviderEndpoint(string socketPath) => SocketPath = socketPath;

    /// <summary>The absolute path of the gRPC socket.</summary>
    public string SocketPath { get; }

    /// <summary>The absolute path of the fd sideband socket.</summary>
    public string SidebandPath => SocketPath + SidebandSuffix;

    /// <summary>Parses <c>unix:PATH</c>; throws <see cref="FormatException"/> with the reason otherwise.</summary>
    public static ProviderEndpoint Parse(string value)
    {
        ArgumentNullException.ThrowIfNull(value);
        string path;
        if (value.StartsWith("unix://", StringComparison.Ordinal))
        {
            path = value["unix://".Length..];
        }
        else if (value.StartsWith("unix:", StringComparison.Ordinal))
        {
            path = value["unix:".Length..];
        }
        else
        {
            throw new FormatException($"endpoint '{value}' is not of the form unix:PATH; only Unix sockets are supported");
        }
        if (path.Length == 0 || path[0] != '/')
        {
            throw new FormatException($"endpoint '{value}' must name an absolute socket path");
        }
        // sockaddr_un.sun_path is 108 bytes including the terminating NUL; the sideband path is longer still.
        if (System.Text.Encoding.UTF8.GetByteCount(path + SidebandSuffix) > 107)
        {
            throw new FormatException($"socket path '{path}' is too long for a Unix socket (with '{SidebandSuffix}', at most 107 bytes)");
        }
        if (path.Contains('\0', StringComparison.Ordinal))
        {
            throw new FormatException("socket path contains a NUL byte");
        }
        return new ProviderEndpoint(path);
    }

    /// <inheritdoc />
    public override string ToString() => "unix:" + SocketPath;
}
