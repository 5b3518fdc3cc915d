using Grpc.Backup.Orchestrator.Inventory;

namespace Grpc.Backup.Service.Internal.Configuration;

/// <summary>
/// Storage and job files parsed the one way, wherever they come from: the host's configuration directory, or the
/// cluster's definitions (<c>grpc-backup cluster apply DIR</c> before it publishes them, and every host as it reads them
/// from etcd). Every error is collected with its file and line, so an administrator fixes them in one pass.
/// </summary>
internal static class DefinitionFiles
{
    public static Dictionary<string, StorageConfig> ParseStorages(IEnumerable<string> files, Func<string, string> read, List<ConfigException> errors)
    {
        var storages = new Dictionary<string, StorageConfig>(StringComparer.Ordinal);
        foreach (string file in files)
        {
            Collect(errors, () =>
            {
                var storage = StorageConfig.Parse(file, read(file));
                storages.Add(storage.Name, storage);
            });
        }
        return storages;
    }

    /// <summary>Jobs, each checked against the storages and by <paramref name="check"/> (references the caller resolves).</summary>
    public static Dictionary<string, JobConfig> ParseJobs(IEnumerable<string> files, Func<string, string> read, IReadOnlyDictionary<string, StorageConfig> storages,
        List<ConfigException> errors, Action<JobConfig> check)
    {
        var jobs = new Dictionary<string, JobConfig>(StringComparer.Ordinal);
        foreach (string file in files)
        {
            Collect(errors, () =>
            {
                JobConfig job = JobConfig.Parse(file, read(file));
                if (!storages.ContainsKey(job.Storage) && !errors.Any(e => e.File?.EndsWith($"/storages/{job.Storage}.conf", StringComparison.Ordinal) == true))
                {
                    throw new ConfigException(file, job.StorageLine, $"storage '{job.Storage}' is not configured (no storages/{job.Storage}.conf)");
                }
                check(job);
                jobs.Add(job.Name, job);
            });
        }
        return jobs;
    }

    public static void Collect(List<ConfigException> errors, Action load)
    {
        try
        {
            load();
        }
        catch (ConfigException e)
        {
            errors.Add(e);
        }
        catch (IOException e)
        {
            errors.Add(new ConfigException(e.Message));
        }
        catch (UnauthorizedAccessException e)
        {
            errors.Add(new ConfigException(e.Message));
        }
    }
}
