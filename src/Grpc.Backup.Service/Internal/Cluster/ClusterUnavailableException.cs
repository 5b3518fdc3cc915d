namespace Grpc.Backup.Service.Internal.Cluster;

/// <summary>A backup could not take its cluster slot because this host has no live etcd session (fail safe).</summary>
internal sealed class ClusterUnavailableException(string message) : Exception(message);
