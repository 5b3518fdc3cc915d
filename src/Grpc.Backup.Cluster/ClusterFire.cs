namespace Grpc.Backup.Cluster;

/// <summary>
/// One scheduled run of a cluster job (<c>fire/JOB/TIME</c>), written once by the scheduler that led then; every host
/// runs its own share of it.
/// </summary>
/// <param name="Revision">The key's create revision: the order in which hosts see fires.</param>
public sealed record ClusterFire(string Job, DateTime Scheduled, string Leader, string Reason, long Revision);
