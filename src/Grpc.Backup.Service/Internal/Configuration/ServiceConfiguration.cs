using Grpc.Backup.Orchestrator.Inventory;

namespace Grpc.Backup.Service.Internal.Configuration;

/// <summary>
/// The configuration directory, loaded whole:
/// <code>
/// host.conf            this host (optional)
/// guests/ID.conf       the guest inventory (one file per guest, as the orchestrator reads it)
/// storages/NAME.conf   providers
/// jobs/NAME.conf       backup jobs
/// notifications/NAME.conf   where jobs report their end (webhook, sendmail)
/// </code>
/// Every file is read and every problem is reported (file, line, reason) before the service refuses to start: an
/// administrator fixes them in one pass, and no job ever runs against a half-understood configuration.
/// </summary>
internal sealed class ServiceConfiguration
{
    private ServiceConfiguration(HostSettings host, IReadOnlyDictionary<string, ConfiguredGuest> guests,
        IReadOnlyDictionary<string, StorageConfig> storages, IReadOnlyDictionary<string, JobConfig> jobs,
        IReadOnlyDictionary<string, NotificationTarget> notifications)
    {
        Notifications = notifications;
        Host = host;
        Guests = guests;
        Storages = storages;
        Jobs = jobs;
    }

    public HostSettings Host { get; }

    public IReadOnlyDictionary<string, ConfiguredGuest> Guests { get; }

    public IReadOnlyDictionary<string, StorageConfig> Storages { get; }

    public IReadOnlyDictionary<string, JobConfig> Jobs { get; }

    public IReadOnlyDictionary<string, NotificationTarget> Notifications { get; }

    /// <summary>The cluster's definitions in use on this host, beside its own (<see cref="AppliedDefinitions.None"/> alone).</summary>
    public AppliedDefinitions Cluster { get; private init; } = AppliedDefinitions.None;

    /// <summary>This host's configuration directory alone, without the cluster's definitions.</summary>
    public ServiceConfiguration Local => _local ?? this;

    private ServiceConfiguration? _local;

    public bool IsClusterJob(string name) => Cluster.Jobs.ContainsKey(name);

    /// <summary>
    /// This host's configuration with the cluster's definitions added. A name is the cluster's or this host's, never
    /// both: a cluster job or storage named like one of this host's is an error, as is a notification target this host
    /// does not configure. The caller keeps the definitions it used before (fail safe: no job runs against a
    /// half-understood configuration).
    /// </summary>
    /// <exception cref="ConfigurationErrorsException">Every conflict, each naming both files.</exception>
    public ServiceConfiguration WithCluster(AppliedDefinitions cluster)
    {
        ServiceConfiguration local = Local;
        var errors = new List<ConfigException>();
        foreach (StorageConfig storage in cluster.Storages.Values.Where(s => local.Storages.ContainsKey(s.Name)))
        {
            errors.Add(new ConfigException(storage.File, 0,
                $"the cluster's storage '{storage.Name}' has the name of this host's {local.Storages[storage.Name].File}: a storage is the cluster's or this host's, not both; rename one"));
        }
        foreach (JobConfig job in cluster.Jobs.Values)
        {
            if (local.Jobs.TryGetValue(job.Name, out JobConfig? mine))
            {
                errors.Add(new ConfigException(job.File, 0,
                    $"the cluster's job '{job.Name}' has the name of this host's {mine.File}: a job is the cluster's or this host's, not both; rename one"));
            }
            DefinitionFiles.Collect(errors, () => CheckNotify(job, local.Notifications, errors));
        }
        if (errors.Count > 0)
        {
            throw new ConfigurationErrorsException(errors);
        }
        return new ServiceConfiguration(local.Host, local.Guests, Merge(local.Storages, cluster.Storages), Merge(local.Jobs, cluster.Jobs), local.Notifications)
        {
            Cluster = cluster,
            _local = local,
        };
    }

    private static Dictionary<string, T> Merge<T>(IReadOnlyDictionary<string, T> local, IReadOnlyDictionary<string, T> cluster) =>
        local.Concat(cluster).ToDictionary(e => e.Key, e => e.Value, StringComparer.Ordinal);

    private static void CheckNotify(JobConfig job, IReadOnlyDictionary<string, NotificationTarget> notifications, List<ConfigException> errors)
    {
        foreach (string target in job.Notify)
        {
            if (!notifications.ContainsKey(target) && !errors.Any(e => e.File?.EndsWith($"/notifications/{target}.conf", StringComparison.Ordinal) == true))
            {
                throw new ConfigException(job.File, job.NotifyLine, $"notification target '{target}' is not configured (no notifications/{target}.conf)");
            }
        }
    }

    /// <exception cref="ConfigurationErrorsException">One or more files are invalid; each error names file and line.</exception>
    public static ServiceConfiguration Load(string directory, string stateDirectory)
    {
        var errors = new List<ConfigException>();
        if (!Directory.Exists(directory))
        {
            throw new ConfigurationErrorsException([new ConfigException(directory, 0, "the configuration directory does not exist")]);
        }
        HostSettings host = HostSettings.Default(stateDirectory);
        string hostFile = Path.Combine(directory, "host.conf");
        if (File.Exists(hostFile))
        {
            DefinitionFiles.Collect(errors, () => host = HostSettings.Parse(hostFile, File.ReadAllText(hostFile), stateDirectory));
        }
        var guests = new Dictionary<string, ConfiguredGuest>(StringComparer.Ordinal);
        string guestDirectory = Path.Combine(directory, "guests");
        if (Directory.Exists(guestDirectory))
        {
            foreach (string file in ConfFiles(guestDirectory))
            {
                DefinitionFiles.Collect(errors, () =>
                {
                    var guest = ConfiguredGuest.Parse(file, File.ReadAllBytes(file));
                    guests.Add(guest.Id, guest);
                });
            }
        }
        var storages = DefinitionFiles.ParseStorages(ConfFiles(Path.Combine(directory, "storages")), File.ReadAllText, errors);
        var notifications = new Dictionary<string, NotificationTarget>(StringComparer.Ordinal);
        foreach (string file in ConfFiles(Path.Combine(directory, "notifications")))
        {
            DefinitionFiles.Collect(errors, () =>
            {
                NotificationTarget target = NotificationTarget.Parse(file, File.ReadAllText(file));
                notifications.Add(target.Name, target);
            });
        }
        var jobs = DefinitionFiles.ParseJobs(ConfFiles(Path.Combine(directory, "jobs")), File.ReadAllText, storages, errors, job =>
        {
            foreach (var (guest, line) in job.GuestLines)
            {
                if (!guests.ContainsKey(guest))
                {
                    throw new ConfigException(job.File, line, $"guest '{guest}' is not in the inventory (no guests/{guest}.conf)");
                }
            }
            CheckNotify(job, notifications, errors);
        });
        return errors.Count > 0 ? throw new ConfigurationErrorsException(errors) : new ServiceConfiguration(host, guests, storages, jobs, notifications);
    }

    private static IEnumerable<string> ConfFiles(string directory) =>
        Directory.Exists(directory) ? Directory.EnumerateFiles(directory, "*.conf").Order(StringComparer.Ordinal) : [];
}
