using Grpc.Backup.Orchestrator.Inventory;

namespace Grpc.Backup.Service.Internal.Configuration;

/// <summary>
/// <c>host.conf</c>: settings of this host. All optional.
/// <code>
/// node: pve1                              # the name hooks and notes see ({{node}}); default: the host name
/// max-backups: 2                          # guest backups at once on this host (OpenNebula MAX_BACKUPS_HOST)
/// fleecing-dir: /var/lib/grpc-backup/fleecing   # default for jobs that name none
/// tmp-dir: /var/tmp                       # containers' views and suspend copies (must be traversable, as vzdump's)
/// metrics-listen: 127.0.0.1:9464          # Prometheus scrape endpoint (GET /metrics); or unix:/run/grpc-backup/metrics.sock
/// otlp-endpoint: http://127.0.0.1:4318    # OpenTelemetry collector (OTLP over HTTP): traces and metrics
/// history-keep-days: 90                   # job runs, their guest results and task logs older than this go (0: no age limit)
/// history-keep-runs: 500                  # and so do all but the newest N runs of each job (0: no count limit)
///                                         # (also how many finished tasks 'status' keeps in memory, 10 to 200)
/// provider-inactivity-timeout: 300        # seconds a provider may report no progress in a backup stream or deliver
///                                         # no data to a restore; 0: no limit
/// fleecing-reserve: 256M                  # free space the fleecing filesystem keeps; below it the backup aborts; 0: off
/// agent-timeout: 10                       # seconds the guest agent has to freeze; then the backup is crash-consistent
/// cluster-endpoints: https://10.0.0.1:2379 # etcd: this host is one of a cluster (ClusterSettings; cluster-ca, -cert,
///                                         # -key, -lease-ttl); without it the host runs alone
/// </code>
/// The history limits are applied after every run and prune; a run still running is never removed. Records of backups
/// (checksums, verifications, manifests) are not history: they go when the backup goes.
/// </summary>
internal sealed record HostSettings(string Node, uint MaxBackups, string FleecingDirectory, string TemporaryDirectory)
{
    /// <summary>Where the Prometheus endpoint listens; none by default.</summary>
    public MetricsListenAddress? MetricsListen { get; init; }

    /// <summary>The OTLP/HTTP collector's base address; traces and metrics are exported only when it is set.</summary>
    public Uri? OtlpEndpoint { get; init; }

    /// <summary>Runs older than this many days are forgotten (0: no age limit).</summary>
    public uint HistoryKeepDays { get; init; } = 90;

    /// <summary>Only the newest this many runs of each job are kept (0: no count limit).</summary>
    public uint HistoryKeepRuns { get; init; } = 500;

    /// <summary>How long a backup stream may go without progress before the host cancels it (issue 15).</summary>
    public TimeSpan ProviderInactivityTimeout { get; init; } = TimeSpan.FromMinutes(5);

    /// <summary>The fleecing filesystem's free space below which a running VM's backup is aborted.</summary>
    public ulong FleecingReserve { get; init; } = 256UL << 20;

    /// <summary>How long the guest agent has to freeze before the backup falls back to crash consistency.</summary>
    public TimeSpan AgentTimeout { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary>The cluster this host belongs to (etcd); null: the host runs alone.</summary>
    public ClusterSettings? Cluster { get; init; }

    public static HostSettings Default(string stateDirectory) =>
        new(Environment.MachineName, 1, Path.Combine(stateDirectory, "fleecing"), "/var/tmp");

    public static HostSettings Parse(string file, string text, string stateDirectory)
    {
        HostSettings settings = Default(stateDirectory);
        string? node = null, maxBackups = null, fleecing = null, temporary = null, metrics = null, otlp = null, keepDays = null, keepRuns = null,
            inactivity = null, reserve = null, agent = null, clusterEndpoints = null, clusterCa = null, clusterCert = null, clusterKey = null, clusterTtl = null;
        ConfigLine? firstClusterLine = null;
        IReadOnlyList<Uri> endpoints = [];
        TimeSpan leaseTtl = ClusterSettings.DefaultLeaseTtl;
        foreach (ConfigLine line in ConfigLine.Parse(file, text))
        {
            switch (line.Key)
            {
                case "node":
                    node = ConfigValues.Single(line, node);
                    if (!GuestSelection.IsPlainName(node))
                    {
                        throw line.Error($"node name '{node}' must match [A-Za-z0-9._-]{{1,64}}");
                    }
                    settings = settings with { Node = node };
                    break;
                case "max-backups":
                    maxBackups = ConfigValues.Single(line, maxBackups);
                    uint max = ConfigValues.Count(line, 64);
                    settings = settings with { MaxBackups = max == 0 ? throw line.Error("max-backups must be at least 1") : max };
                    break;
                case "fleecing-dir":
                    fleecing = ConfigValues.Single(line, fleecing);
                    settings = settings with { FleecingDirectory = ConfigValues.AbsolutePath(line, fleecing) };
                    break;
                case "tmp-dir":
                    temporary = ConfigValues.Single(line, temporary);
                    settings = settings with { TemporaryDirectory = ConfigValues.AbsolutePath(line, temporary) };
                    break;
                case "metrics-listen":
                    metrics = ConfigValues.Single(line, metrics);
                    settings = settings with { MetricsListen = MetricsListenAddress.Parse(line) };
                    break;
                case "otlp-endpoint":
                    otlp = ConfigValues.Single(line, otlp);
                    settings = settings with { OtlpEndpoint = ConfigValues.HttpUrl(line) };
                    break;
                case "history-keep-days":
                    keepDays = ConfigValues.Single(line, keepDays);
                    settings = settings with { HistoryKeepDays = ConfigValues.Count(line, 36_500) };
                    break;
                case "history-keep-runs":
                    keepRuns = ConfigValues.Single(line, keepRuns);
                    settings = settings with { HistoryKeepRuns = ConfigValues.Count(line, 1_000_000) };
                    break;
                case "provider-inactivity-timeout":
                    inactivity = ConfigValues.Single(line, inactivity);
                    settings = settings with { ProviderInactivityTimeout = TimeSpan.FromSeconds(ConfigValues.Count(line, 7 * 24 * 3600)) };
                    break;
                case "fleecing-reserve":
                    reserve = ConfigValues.Single(line, reserve);
                    settings = settings with { FleecingReserve = ConfigValues.Bytes(line) };
                    break;
                case "agent-timeout":
                    agent = ConfigValues.Single(line, agent);
                    uint seconds = ConfigValues.Count(line, 3600);
                    settings = settings with { AgentTimeout = seconds == 0 ? throw line.Error("agent-timeout must be at least 1 second") : TimeSpan.FromSeconds(seconds) };
                    break;
                case "cluster-endpoints":
                    clusterEndpoints = ConfigValues.Single(line, clusterEndpoints);
                    endpoints = ClusterSettings.ParseEndpoints(line);
                    break;
                case "cluster-ca":
                    firstClusterLine ??= line;
                    clusterCa = ConfigValues.AbsolutePath(line, ConfigValues.Single(line, clusterCa));
                    break;
                case "cluster-cert":
                    firstClusterLine ??= line;
                    clusterCert = ConfigValues.AbsolutePath(line, ConfigValues.Single(line, clusterCert));
                    break;
                case "cluster-key":
                    firstClusterLine ??= line;
                    clusterKey = ConfigValues.TrustedFile(line, ConfigValues.AbsolutePath(line, ConfigValues.Single(line, clusterKey)), executable: false, secret: true);
                    break;
                case "cluster-lease-ttl":
                    firstClusterLine ??= line;
                    clusterTtl = ConfigValues.Single(line, clusterTtl);
                    uint ttl = ConfigValues.Count(line, 300);
                    leaseTtl = ttl < 2 ? throw line.Error("cluster-lease-ttl must be at least 2 seconds") : TimeSpan.FromSeconds(ttl);
                    break;
                default:
                    throw line.Error($"unknown key '{line.Key}' (host.conf knows node, max-backups, fleecing-dir, tmp-dir, metrics-listen, otlp-endpoint, "
                        + "history-keep-days, history-keep-runs, provider-inactivity-timeout, fleecing-reserve, agent-timeout, cluster-endpoints, "
                        + "cluster-ca, cluster-cert, cluster-key, cluster-lease-ttl)");
            }
        }
        if (clusterEndpoints is null)
        {
            return firstClusterLine is { } stray ? throw stray.Error($"'{stray.Key}' needs cluster-endpoints (without it this host runs alone)") : settings;
        }
        if (clusterCert is null != clusterKey is null)
        {
            throw new ConfigException(file, 0, "cluster-cert and cluster-key go together");
        }
        if (endpoints[0].Scheme == Uri.UriSchemeHttp && (clusterCa ?? clusterCert) is not null)
        {
            throw new ConfigException(file, 0, "cluster-ca, cluster-cert and cluster-key need https:// cluster-endpoints");
        }
        return settings with { Cluster = new ClusterSettings(endpoints, clusterCa, clusterCert, clusterKey, leaseTtl) };
    }
}
