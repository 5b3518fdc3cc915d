namespace Grpc.Backup.Cluster;

/// <summary>
/// The job and storage definitions the administrator applied (<c>config/</c>): each file's text by its name relative to
/// the applied directory (<c>storages/NAME.conf</c>, <c>jobs/NAME.conf</c>), and the revision of the apply that wrote
/// them (0: nothing was ever applied). The hosts parse them exactly as their own configuration directory.
/// </summary>
public sealed record ClusterDefinitionFiles(IReadOnlyDictionary<string, string> Files, long Revision);
