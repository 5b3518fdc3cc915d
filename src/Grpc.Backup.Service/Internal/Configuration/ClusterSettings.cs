using Grpc.Backup.Orchestrator.Inventory;

namespace Grpc.Backup.Service.Internal.Configuration;

/// <summary>
/// host.conf's cluster keys (issue 19). Without <c>cluster-endpoints</c> there is no cluster: the host runs alone, as
/// it always did, and the other cluster keys are refused.
/// <code>
/// cluster-endpoints: https://10.0.0.1:2379 https://10.0.0.2:2379 https://10.0.0.3:2379   # etcd members
/// cluster-ca: /etc/grpc-backup/cluster/ca.crt          # the CA that signed the members' certificates (https)
/// cluster-cert: /etc/grpc-backup/cluster/pve1.crt      # this host's client certificate and key (PEM; both or none)
/// cluster-key: /etc/grpc-backup/cluster/pve1.key       # root-only, like a secret
/// cluster-lease-ttl: 10                                # seconds a dead host's slots stay held (2 to 300)
/// </code>
/// The node name is host.conf's <c>node</c>; it must be unique in the cluster.
/// </summary>
internal sealed record ClusterSettings(IReadOnlyList<Uri> Endpoints, string? CaFile, string? CertFile, string? KeyFile, TimeSpan LeaseTtl)
{
    public static readonly TimeSpan DefaultLeaseTtl = TimeSpan.FromSeconds(10);

    public static IReadOnlyList<Uri> ParseEndpoints(ConfigLine line)
    {
        var endpoints = new List<Uri>();
        foreach (string word in ConfigValues.Words(line))
        {
            if (!ConfigValues.TryHttpUrl(word, out Uri? url) || url.AbsolutePath != "/" || url.Port <= 0)
            {
                throw line.Error($"cluster-endpoints: '{word}' is not an etcd member's http://host:port or https://host:port");
            }
            endpoints.Add(url);
        }
        if (endpoints.Select(e => e.Scheme).Distinct().Count() != 1)
        {
            throw line.Error("cluster-endpoints: all members are http:// or all are https://");
        }
        return endpoints;
    }

    public global::Grpc.Backup.Cluster.ClusterOptions ToOptions(string node) => new()
    {
        Endpoints = Endpoints, Node = node, CaFile = CaFile, CertFile = CertFile, KeyFile = KeyFile, LeaseTtl = LeaseTtl,
    };
}
