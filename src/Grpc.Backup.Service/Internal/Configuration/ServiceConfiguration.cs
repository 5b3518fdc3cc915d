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
            Collect(errors, () => host = HostSettings.Parse(hostFile, File.ReadAllText(hostFile), stateDirectory));
        }
        var guests = new Dictionary<string, ConfiguredGuest>(StringComparer.Ordinal);
        string guestDirectory = Path.Combine(directory, "guests");
        if (Directory.Exists(guestDirectory))
        {
            foreach (string file in ConfFiles(guestDirectory))
            {
                Collect(errors, () =>
                {
                    var guest = ConfiguredGuest.Parse(file, File.ReadAllBytes(file));
                    guests.Add(guest.Id, guest);
                });
            }
        }
        var storages = new Dictionary<string, StorageConfig>(StringComparer.Ordinal);
        foreach (string file in ConfFiles(Path.Combine(directory, "storages")))
        {
            Collect(errors, () =>
            {
                var storage = StorageConfig.Parse(file, File.ReadAllText(file));
                storages.Add(storage.Name, storage);
            });
        }
        var notifications = new Dictionary<string, NotificationTarget>(StringComparer.Ordinal);
        foreach (string file in ConfFiles(Path.Combine(directory, "notifications")))
        {
            Collect(errors, () =>
            {
                NotificationTarget target = NotificationTarget.Parse(file, File.ReadAllText(file));
                notifications.Add(target.Name, target);
            });
        }
        var jobs = new Dictionary<string, JobConfig>(StringComparer.Ordinal);
        foreach (string file in ConfFiles(Path.Combine(directory, "jobs")))
        {
            Collect(errors, () =>
            {
                JobConfig job = JobConfig.Parse(file, File.ReadAllText(file));
                if (!storages.ContainsKey(job.Storage) && !errors.Any(e => e.File?.EndsWith($"/storages/{job.Storage}.conf", StringComparison.Ordinal) == true))
                {
                    throw new ConfigException(file, job.StorageLine, $"storage '{job.Storage}' is not configured (no storages/{job.Storage}.conf)");
                }
                foreach (var (guest, line) in job.GuestLines)
                {
                    if (!guests.ContainsKey(guest))
                    {
                        throw new ConfigException(file, line, $"guest '{guest}' is not in the inventory (no guests/{guest}.conf)");
                    }
                }
                foreach (string target in job.Notify)
                {
                    if (!notifications.ContainsKey(target) && !errors.Any(e => e.File?.EndsWith($"/notifications/{target}.conf", StringComparison.Ordinal) == true))
                    {
                        throw new ConfigException(file, job.NotifyLine, $"notification target '{target}' is not configured (no notifications/{target}.conf)");
                    }
                }
                jobs.Add(job.Name, job);
            });
        }
        return errors.Count > 0 ? throw new ConfigurationErrorsException(errors) : new ServiceConfiguration(host, guests, storages, jobs, notifications);
    }

    private static IEnumerable<string> ConfFiles(string directory) =>
        Directory.Exists(directory) ? Directory.EnumerateFiles(directory, "*.conf").Order(StringComparer.Ordinal) : [];

    private static void Collect(List<ConfigException> errors, Action load)
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
