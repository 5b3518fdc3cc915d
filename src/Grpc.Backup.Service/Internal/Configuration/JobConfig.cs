using Cronos;
using Grpc.Backup.Orchestrator.Inventory;

namespace Grpc.Backup.Service.Internal.Configuration;

/// <summary>
/// <c>jobs/NAME.conf</c>: what to back up, where, when, and what to keep.
/// <code>
/// storage: local-dir              # a storages/NAME.conf (required)
/// guests: all                     # or: guests: 100 101
/// tags: prod db                   # also every guest with one of these tags ('tags:' in its ID.conf)
/// exclude: 102
/// mode: snapshot                  # snapshot (live), suspend or stop, as vzdump
/// exclude-path: /tmp/?* /var/cache   # containers: vzdump exclusion patterns
/// fleecing-dir: /var/lib/grpc-backup/fleecing
/// bwlimit: 50M                    # bytes per second
/// schedule: 0 2 * * *             # cron: 5 fields, or 6 with seconds first
/// repeat-missed: yes              # run once at start-up if the service was down at a scheduled time
/// keep-last: 3                    # and keep-hourly, keep-daily, keep-weekly, keep-monthly, keep-yearly
/// notes-template: {{guestname}} on {{node}}
/// hook: /etc/grpc-backup/hooks/notify
/// priority: 5                     # 0-9, lower runs first when backup slots are contended
/// notify: ops-hook root-mail      # notifications/NAME.conf targets told when the run ends (or JobInit fails)
/// notify-on: failure              # always (default) or failure
/// enabled: yes
/// file-manifest: yes              # containers: record the file manifest verification compares with (a second walk
///                                 # that hashes every file, about as long as the backup; stop mode stays stopped for it)
/// kind: backup                    # or verify: restore backups to scratch and compare them with what was recorded
/// verify: latest                  # verify jobs: latest (each guest's newest backup) or unverified (all never verified)
/// </code>
/// A verify job takes storage, guests/tags/exclude, schedule, repeat-missed, priority and enabled; the backup-only keys
/// are errors there.
/// </summary>
internal sealed record JobConfig(string Name, string Storage, GuestSelection Selection, string? FleecingDirectory, ulong BandwidthLimit,
    CronExpression? Schedule, string? ScheduleText, bool RepeatMissed, RetentionSettings Retention, NotesTemplate? Notes, string? Hook,
    uint Priority, bool Enabled, string File, int StorageLine, IReadOnlyDictionary<string, int> GuestLines, JobMode Mode, int ModeLine,
    IReadOnlyList<string> ExcludePaths, JobKind Kind = JobKind.Backup, VerifySelection Verify = VerifySelection.Latest,
    bool FileManifest = true)
{
    /// <summary>The notification targets (names of notifications/NAME.conf) told about each run.</summary>
    public IReadOnlyList<string> Notify { get; init; } = [];

    public int NotifyLine { get; init; }

    /// <summary>False: report every run; true: only runs that did not succeed.</summary>
    public bool NotifyOnFailureOnly { get; init; }

    private static readonly string[] VerifyJobKeys =
        ["storage", "guests", "tags", "exclude", "schedule", "repeat-missed", "priority", "enabled", "kind", "verify", "notify", "notify-on"];

    private static readonly string[] KnownKeys =
    [
        "storage", "guests", "tags", "exclude", "mode", "exclude-path", "fleecing-dir", "bwlimit", "schedule", "repeat-missed", "keep-last",
        "keep-hourly", "keep-daily", "keep-weekly", "keep-monthly", "keep-yearly", "notes-template", "hook", "priority", "enabled", "notify", "notify-on",
        "kind", "verify", "file-manifest",
    ];

    public static JobConfig Parse(string file, string text)
    {
        string name = Path.GetFileNameWithoutExtension(file);
        if (!GuestSelection.IsPlainName(name))
        {
            throw new ConfigException(file, 0, $"job name '{name}' (the file name) must match [A-Za-z0-9._-]{{1,64}}");
        }
        var seen = new Dictionary<string, int>(StringComparer.Ordinal);
        string? storage = null, fleecing = null, scheduleText = null, hook = null;
        int storageLine = 0;
        bool all = false, repeatMissed = false, enabled = true;
        var guests = new List<string>();
        var guestLines = new Dictionary<string, int>(StringComparer.Ordinal);
        var tags = new List<string>();
        var exclude = new List<string>();
        ulong bwlimit = 0;
        CronExpression? schedule = null;
        RetentionSettings retention = RetentionSettings.None;
        NotesTemplate? notes = null;
        uint priority = 5;
        JobMode mode = JobMode.Snapshot;
        int modeLine = 0;
        var excludePaths = new List<string>();
        var notify = new List<string>();
        bool notifyOnFailureOnly = false;
        JobKind kind = JobKind.Backup;
        VerifySelection verify = VerifySelection.Latest;
        bool fileManifest = true;
        foreach (ConfigLine line in ConfigLine.Parse(file, text))
        {
            if (!KnownKeys.Contains(line.Key, StringComparer.Ordinal))
            {
                throw line.Error($"unknown key '{line.Key}' (a job knows {string.Join(", ", KnownKeys)})");
            }
            if (!seen.TryAdd(line.Key, line.Number))
            {
                throw line.Error($"'{line.Key}' is already given on line {seen[line.Key]}");
            }
            switch (line.Key)
            {
                case "storage":
                    storage = GuestSelection.IsPlainName(line.Value) ? line.Value : throw line.Error($"'{line.Value}' is not a storage name");
                    storageLine = line.Number;
                    break;
                case "guests":
                    if (line.Value == "all")
                    {
                        all = true;
                        break;
                    }
                    foreach (string id in Names(line, "guest id"))
                    {
                        guests.Add(id);
                        guestLines[id] = line.Number;
                    }
                    break;
                case "tags":
                    tags.AddRange(Names(line, "tag"));
                    break;
                case "exclude":
                    exclude.AddRange(Names(line, "guest id"));
                    break;
                case "mode":
                    modeLine = line.Number;
                    mode = line.Value switch
                    {
                        "snapshot" => JobMode.Snapshot,
                        "suspend" => JobMode.Suspend,
                        "stop" => JobMode.Stop,
                        _ => throw line.Error($"mode '{line.Value}' is not known; use snapshot, suspend or stop"),
                    };
                    break;
                case "exclude-path":
                    excludePaths.AddRange(ConfigValues.Words(line));
                    break;
                case "fleecing-dir":
                    fleecing = ConfigValues.AbsolutePath(line, line.Value);
                    break;
                case "bwlimit":
                    bwlimit = ConfigValues.Bytes(line);
                    break;
                case "schedule":
                    scheduleText = line.Value;
                    schedule = ParseSchedule(line);
                    break;
                case "repeat-missed":
                    repeatMissed = ConfigValues.Bool(line);
                    break;
                case "keep-last":
                    retention = retention with { KeepLast = ConfigValues.Count(line, 100_000) };
                    break;
                case "keep-hourly":
                    retention = retention with { KeepHourly = ConfigValues.Count(line, 100_000) };
                    break;
                case "keep-daily":
                    retention = retention with { KeepDaily = ConfigValues.Count(line, 100_000) };
                    break;
                case "keep-weekly":
                    retention = retention with { KeepWeekly = ConfigValues.Count(line, 100_000) };
                    break;
                case "keep-monthly":
                    retention = retention with { KeepMonthly = ConfigValues.Count(line, 100_000) };
                    break;
                case "keep-yearly":
                    retention = retention with { KeepYearly = ConfigValues.Count(line, 100_000) };
                    break;
                case "notes-template":
                    notes = NotesTemplate.Parse(line);
                    break;
                case "hook":
                    hook = ConfigValues.TrustedFile(line, line.Value, executable: true, secret: false);
                    break;
                case "priority":
                    priority = ConfigValues.Count(line, 9);
                    break;
                case "enabled":
                    enabled = ConfigValues.Bool(line);
                    break;
                case "file-manifest":
                    fileManifest = ConfigValues.Bool(line);
                    break;
                case "kind":
                    kind = line.Value switch
                    {
                        "backup" => JobKind.Backup,
                        "verify" => JobKind.Verify,
                        _ => throw line.Error($"kind '{line.Value}' is not known; use backup or verify"),
                    };
                    break;
                case "verify":
                    verify = line.Value switch
                    {
                        "latest" => VerifySelection.Latest,
                        "unverified" => VerifySelection.Unverified,
                        _ => throw line.Error($"verify '{line.Value}' is not known; use latest or unverified"),
                    };
                    break;
                case "notify":
                    notify.AddRange(Names(line, "notification target"));
                    break;
                case "notify-on":
                    notifyOnFailureOnly = line.Value switch
                    {
                        "always" => false,
                        "failure" => true,
                        _ => throw line.Error($"notify-on '{line.Value}' is not known; use always or failure"),
                    };
                    break;
            }
        }
        if (storage is null)
        {
            throw new ConfigException(file, 0, "missing 'storage: NAME' (a file in storages/)");
        }
        if (!all && guests.Count == 0 && tags.Count == 0)
        {
            throw new ConfigException(file, 0, "a job needs 'guests: all', 'guests: ID ...' or 'tags: TAG ...'");
        }
        if (all && (guests.Count > 0 || tags.Count > 0))
        {
            throw new ConfigException(file, seen["guests"], "'guests: all' cannot be combined with tags");
        }
        if (kind == JobKind.Verify && seen.Keys.FirstOrDefault(k => !VerifyJobKeys.Contains(k, StringComparer.Ordinal)) is { } backupOnly)
        {
            throw new ConfigException(file, seen[backupOnly], $"'{backupOnly}' is for backup jobs; a verify job knows {string.Join(", ", VerifyJobKeys)}");
        }
        if (kind == JobKind.Backup && seen.TryGetValue("verify", out int verifyLine))
        {
            throw new ConfigException(file, verifyLine, "'verify' needs 'kind: verify'");
        }
        if (repeatMissed && schedule is null)
        {
            throw new ConfigException(file, seen["repeat-missed"], "repeat-missed needs a schedule");
        }
        return new JobConfig(name, storage, new GuestSelection(all, guests, tags, exclude), fleecing, bwlimit, schedule, scheduleText,
            repeatMissed, retention, notes, hook, priority, enabled, file, storageLine, guestLines, mode, modeLine, excludePaths, kind, verify, fileManifest)
        {
            Notify = notify,
            NotifyLine = seen.GetValueOrDefault("notify"),
            NotifyOnFailureOnly = notifyOnFailureOnly,
        };
    }

    private static IEnumerable<string> Names(ConfigLine line, string what)
    {
        IReadOnlyList<string> words = ConfigValues.Words(line);
        if (words.Count == 0)
        {
            throw line.Error($"'{line.Key}' needs at least one {what}");
        }
        foreach (string word in words)
        {
            yield return GuestSelection.IsPlainName(word) ? word : throw line.Error($"'{word}' is not a valid {what}");
        }
    }

    private static CronExpression ParseSchedule(ConfigLine line)
    {
        int fields = line.Value.Split(' ', StringSplitOptions.RemoveEmptyEntries).Length;
        try
        {
            return line.Value.StartsWith('@') ? CronExpression.Parse(line.Value)
                : fields switch
                {
                    5 => CronExpression.Parse(line.Value, CronFormat.Standard),
                    6 => CronExpression.Parse(line.Value, CronFormat.IncludeSeconds),
                    _ => throw line.Error($"schedule '{line.Value}' has {fields} fields; cron needs 5 (minute hour day month weekday) or 6 (seconds first)"),
                };
        }
        catch (CronFormatException e)
        {
            throw line.Error($"schedule '{line.Value}' is not valid cron: {e.Message}");
        }
    }
}
