using Grpc.Backup.Orchestrator.Inventory;

namespace Grpc.Backup.Service.Internal.Configuration;

/// <summary>
/// The cluster's job and storage definitions (issue 19), parsed: what <c>grpc-backup cluster apply DIR</c> validates
/// before it publishes, and what each host reads back from etcd. The same files and parsers as a host's configuration
/// directory; only the guests differ: a cluster job's guests are the cluster's, so a guest id is not checked against
/// one host's inventory (each host backs up those it runs).
/// </summary>
internal sealed class AppliedDefinitions
{
    private AppliedDefinitions(IReadOnlyDictionary<string, StorageConfig> storages, IReadOnlyDictionary<string, JobConfig> jobs, long revision)
    {
        Storages = storages;
        Jobs = jobs;
        Revision = revision;
    }

    public static AppliedDefinitions None { get; } = new(new Dictionary<string, StorageConfig>(), new Dictionary<string, JobConfig>(), 0);

    public IReadOnlyDictionary<string, StorageConfig> Storages { get; }

    public IReadOnlyDictionary<string, JobConfig> Jobs { get; }

    /// <summary>The etcd revision of the apply (0: none).</summary>
    public long Revision { get; }

    /// <summary>
    /// Parses <paramref name="files"/> (text by name relative to the applied directory: <c>storages/NAME.conf</c>,
    /// <c>jobs/NAME.conf</c>); errors name each file as <paramref name="origin"/> + its name (the directory, or the etcd
    /// key prefix).
    /// </summary>
    /// <exception cref="ConfigurationErrorsException">One or more files are invalid.</exception>
    public static AppliedDefinitions Parse(IReadOnlyDictionary<string, string> files, string origin, long revision)
    {
        var errors = new List<ConfigException>();
        var byPath = files.ToDictionary(f => origin + f.Key, f => f.Value, StringComparer.Ordinal);
        foreach (string other in files.Keys.Where(f => !(IsIn(f, "storages") || IsIn(f, "jobs"))).Order(StringComparer.Ordinal))
        {
            errors.Add(new ConfigException(origin + other, 0, "the cluster's definitions are storages/NAME.conf and jobs/NAME.conf; host.conf, guests and notifications stay each host's"));
        }
        string[] Of(string directory) => [.. files.Keys.Where(f => IsIn(f, directory)).Order(StringComparer.Ordinal).Select(f => origin + f)];
        var storages = DefinitionFiles.ParseStorages(Of("storages"), path => byPath[path], errors);
        var jobs = DefinitionFiles.ParseJobs(Of("jobs"), path => byPath[path], storages, errors, _ => { });
        return errors.Count > 0 ? throw new ConfigurationErrorsException(errors) : new AppliedDefinitions(storages, jobs, revision);
    }

    private static bool IsIn(string file, string directory) =>
        file.StartsWith(directory + "/", StringComparison.Ordinal) && file.EndsWith(".conf", StringComparison.Ordinal) && file.Count(c => c == '/') == 1;
}
