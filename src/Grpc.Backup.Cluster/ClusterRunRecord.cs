namespace Grpc.Backup.Cluster;

/// <summary>
/// One run as the cluster sees it (<c>runs/NODE/TASK</c>): the summary every host can list. Each host's SQLite catalog
/// keeps the details (sizes, durations, bitmap modes); this is what "every run of every host" needs, and no more.
/// </summary>
public sealed record ClusterRunRecord
{
    public required string Node { get; init; }

    public required string TaskId { get; init; }

    /// <summary>"job", "backup", "restore" or "verify".</summary>
    public required string Kind { get; init; }

    public string Job { get; init; } = "";

    public string Storage { get; init; } = "";

    public required DateTime Started { get; init; }

    public DateTime? Ended { get; init; }

    /// <summary>"running", "succeeded", "failed" or "cancelled".</summary>
    public required string State { get; init; }

    public string Error { get; init; } = "";

    public IReadOnlyList<ClusterGuestResult> Guests { get; init; } = [];

    /// <summary>The state of a run a host never finished: it left the cluster (or restarted) while it ran.</summary>
    public const string Running = "running";
}
