using Grpc.Backup.Transport;

namespace Grpc.Backup.Protocol.Containers;

/// <summary>
/// What the host gives a provider's container worker (mechanism DIRECTORY), as protos/README.md "Container worker"
/// defines it: environment variables, and the provider's sideband connection as fd <see cref="SidebandFd"/>.
/// Lists are newline-separated; the host refuses sources and patterns that contain control characters.
/// </summary>
public static class ContainerWorkerEnvironment
{
    /// <summary>The transfer token (32 lowercase hex digits) of the one TRANSFER the worker sends on fd 3.</summary>
    public const string Token = "BACKUP_WORKER_TOKEN";

    /// <summary>BackupInitRequest.backup_id.</summary>
    public const string BackupId = "BACKUP_ID";

    /// <summary>The absolute path of the view's root, as the worker sees it.</summary>
    public const string View = "BACKUP_VIEW";

    /// <summary>BackupContainerRequest.sources, relative to the view: "." then "./mnt/data"...</summary>
    public const string Sources = "BACKUP_SOURCES";

    /// <summary>BackupContainerRequest.exclude_patterns (vzdump semantics).</summary>
    public const string ExcludePatterns = "BACKUP_EXCLUDE";

    /// <summary>The bandwidth limit in bytes per second; 0 is unlimited. The worker enforces it.</summary>
    public const string BytesPerSecond = "BACKUP_BWLIMIT";

    /// <summary>The fd number of the connection to the provider's sideband (HELLO already consumed by the host).</summary>
    public const int SidebandFd = 3;

    /// <summary>The variables for one worker run.</summary>
    public static IReadOnlyDictionary<string, string> Create(FdToken token, string backupId, string view, IEnumerable<string> sources,
        IEnumerable<string> excludePatterns, ulong bytesPerSecond) => new Dictionary<string, string>(StringComparer.Ordinal)
        {
            [Token] = Convert.ToHexStringLower(token.ToByteArray()),
            [BackupId] = backupId,
            [View] = view,
            [Sources] = JoinLines(sources),
            [ExcludePatterns] = JoinLines(excludePatterns),
            [BytesPerSecond] = bytesPerSecond.ToString(System.Globalization.CultureInfo.InvariantCulture),
        };

    /// <summary>Splits a list variable; an unset or empty variable is an empty list.</summary>
    public static IReadOnlyList<string> SplitLines(string? value) =>
        string.IsNullOrEmpty(value) ? [] : value.Split('\n');

    private static string JoinLines(IEnumerable<string> values)
    {
        var list = values.ToList();
        if (list.Any(v => v.Any(char.IsControl)))
        {
            throw new ArgumentException("a worker source or exclusion pattern contains a control character");
        }
        return string.Join('\n', list);
    }
}
