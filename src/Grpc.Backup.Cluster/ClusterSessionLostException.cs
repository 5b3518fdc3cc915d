namespace Grpc.Backup.Cluster;

/// <summary>The host's etcd lease is lost: it may no longer take slots or fire runs (fail safe).</summary>
public sealed class ClusterSessionLostException(string node)
    : InvalidOperationException($"the cluster session of node {node} is lost (its etcd lease expired or etcd was unreachable for a whole TTL)");
