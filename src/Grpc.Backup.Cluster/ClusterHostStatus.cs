namespace Grpc.Backup.Cluster;

/// <summary>
/// One host as the cluster sees it (<see cref="ClusterSession.ListHostsAsync"/>): alive while its lease is (its
/// <c>nodes/NODE</c> key exists), the guests it registered, the definitions revision it uses, and its unfinished runs.
/// A host that is gone shows only through its run records, not alive, its unfinished runs shown failed.
/// </summary>
public sealed record ClusterHostStatus(string Node, bool Alive, long DefinitionsRevision, IReadOnlyList<string> Guests,
    IReadOnlyList<ClusterRunRecord> Running);
