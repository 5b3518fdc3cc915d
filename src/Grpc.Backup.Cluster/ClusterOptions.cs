namespace Grpc.Backup.Cluster;

/// <summary>
/// How this host joins the cluster: the etcd members to reach, the client certificate (all three TLS files or none),
/// its node name and the lease's time to live. Single-host operation has no <see cref="ClusterOptions"/> at all.
/// </summary>
public sealed record ClusterOptions
{
    /// <summary>etcd members, <c>http://host:port</c> or <c>https://host:port</c>; the client fails over between them.</summary>
    public required IReadOnlyList<Uri> Endpoints { get; init; }

    /// <summary>This host's name in the cluster: its registrations, its slots' values and its per-host slots.</summary>
    public required string Node { get; init; }

    /// <summary>The CA that signed the etcd members' certificates (https endpoints).</summary>
    public string? CaFile { get; init; }

    /// <summary>This host's client certificate and key (PEM), for etcd's <c>--client-cert-auth</c>.</summary>
    public string? CertFile { get; init; }

    public string? KeyFile { get; init; }

    /// <summary>
    /// The session lease's TTL: how long the slots and registrations of a host that died stay held. Kept alive every
    /// third of it.
    /// </summary>
    public TimeSpan LeaseTtl { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary>How many run records (<c>runs/NODE/…</c>) this host keeps in etcd; its catalog keeps the rest.</summary>
    public int RunRecordsKept { get; init; } = 100;

    /// <summary>Every key this project writes lives under this prefix.</summary>
    public string KeyPrefix { get; init; } = "/grpc-backup/";
}
