using System.CommandLine;
using System.Globalization;
using Google.Protobuf;
using Grpc.Backup.Management.V1;

namespace Grpc.Backup.Cli;

/// <summary>
/// The commands that only talk to the backup service: list, show, prune, jobs, status, cancel, watch and providers list.
/// Each prints aligned text, or with <c>--json</c> the reply as protobuf JSON on stdout.
/// </summary>
internal static class ServiceCommands
{
    private static readonly string[] KeepRules = ["last", "hourly", "daily", "weekly", "monthly", "yearly"];

    public static Command List()
    {
        var socket = ServiceOptions.Socket();
        var json = CommonOptions.Json();
        var storage = new Option<string>("--storage") { Description = "Only this storage" };
        var guest = new Option<string>("--guest") { Description = "Only this guest" };
        var refresh = new Option<bool>("--refresh") { Description = "Re-read the providers' lists first (they are the source of truth)" };
        var command = new Command("list", "List backups from the catalog, newest first") { storage, guest, refresh, socket, json };
        command.SetAction((result, cancellationToken) => ServiceClient.RunAsync(result.GetValue(socket)!, async client =>
        {
            var reply = await client.Management.ListBackupsAsync(new ListBackupsRequest
            {
                Storage = result.GetValue(storage) ?? "",
                GuestId = result.GetValue(guest) ?? "",
                Refresh = result.GetValue(refresh),
            }, cancellationToken: cancellationToken);
            Print(reply, result.GetValue(json), () =>
            {
                foreach (var b in reply.Backups)
                {
                    Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                        $"{b.Storage,-12} {b.GuestId,-8} {b.BackupTime.ToDateTime():yyyy-MM-dd HH:mm:ss} {(b.Incremental ? "incr" : "full"),-4} {b.StoredSizeBytes,14} {Names.VerificationOf(b),-14} {(b.Protected ? "protected " : "")}{b.ArchiveName} {b.Notes}"));
                }
            });
            return ExitCodes.Success;
        }));
        return command;
    }

    public static Command Show()
    {
        var socket = ServiceOptions.Socket();
        var json = CommonOptions.Json();
        var storage = new Option<string>("--storage") { Description = "Only this storage" };
        var archive = new Argument<string>("archive") { Description = "The archive name, as listed" };
        var command = new Command("show", "One backup from the catalog: sizes, notes and its last verification") { archive, storage, socket, json };
        command.SetAction((result, cancellationToken) => ServiceClient.RunAsync(result.GetValue(socket)!, async client =>
        {
            var reply = await client.Management.ListBackupsAsync(new ListBackupsRequest { Storage = result.GetValue(storage) ?? "" },
                cancellationToken: cancellationToken);
            string name = result.GetValue(archive)!;
            if (reply.Backups.FirstOrDefault(b => b.ArchiveName == name) is not { } b)
            {
                await Console.Error.WriteLineAsync($"grpc-backup: no backup '{name}' in the catalog (try list --refresh)");
                return ExitCodes.NotFound;
            }
            Print(b, result.GetValue(json), () =>
            {
                Console.WriteLine($"archive:      {b.ArchiveName}");
                Console.WriteLine($"storage:      {b.Storage}");
                Console.WriteLine($"guest:        {b.GuestId}");
                Console.WriteLine($"time:         {Time(b.BackupTime)}");
                Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"kind:         {(b.Incremental ? "incremental" : "full")}{(b.Protected ? ", protected" : "")}"));
                Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"size:         {b.StoredSizeBytes} stored, {b.RestoredSizeBytes} restored"));
                Console.WriteLine($"notes:        {b.Notes}");
                Console.WriteLine(b.Verification is { } v
                    ? $"verification: {Names.Of(v.State)} at {Time(v.Time)} (task {v.TaskId}): {v.Detail}"
                    : "verification: never verified");
            });
            return ExitCodes.Success;
        }));
        return command;
    }

    public static Command Prune()
    {
        var socket = ServiceOptions.Socket();
        var json = CommonOptions.Json();
        var storage = new Option<string>("--storage") { Description = "The storage to prune", Required = true };
        var guest = new Option<string>("--guest") { Description = "Only this guest (default: every guest, each on its own)" };
        var dryRun = new Option<bool>("--dry-run") { Description = "Show the decision, remove nothing" };
        Option<uint>[] keeps = [.. KeepRules
            .Select(k => new Option<uint>($"--keep-{k}") { Description = $"Keep {k} backups (see PruneBackups in repository.proto)" })];
        var command = new Command("prune", "Apply a retention policy through the provider; protected backups are never removed")
        {
            storage, guest, dryRun, socket, json,
        };
        foreach (Option<uint> keep in keeps)
        {
            command.Options.Add(keep);
        }
        command.SetAction((result, cancellationToken) => ServiceClient.RunAsync(result.GetValue(socket)!, async client =>
        {
            var reply = await client.Management.PruneAsync(new PruneRequest
            {
                Storage = result.GetValue(storage)!,
                GuestId = result.GetValue(guest) ?? "",
                DryRun = result.GetValue(dryRun),
                Retention = new Retention
                {
                    KeepLast = result.GetValue(keeps[0]), KeepHourly = result.GetValue(keeps[1]), KeepDaily = result.GetValue(keeps[2]),
                    KeepWeekly = result.GetValue(keeps[3]), KeepMonthly = result.GetValue(keeps[4]), KeepYearly = result.GetValue(keeps[5]),
                },
            }, cancellationToken: cancellationToken);
            Print(reply, result.GetValue(json), () =>
            {
                bool dry = result.GetValue(dryRun);
                foreach (var d in reply.Decisions)
                {
                    // The provider's reason for a removal is the outcome ("removed"); a dry run removed nothing.
                    Console.WriteLine(d.Keep ? $"keep         {d.ArchiveName} ({d.Reason})"
                        : dry ? $"would remove {d.ArchiveName}" : $"removed      {d.ArchiveName}");
                }
            });
            return ExitCodes.Success;
        }));
        return command;
    }

    public static Command Jobs()
    {
        var socket = ServiceOptions.Socket();
        var json = CommonOptions.Json();
        var list = new Command("jobs", "List the configured jobs, their schedules and last results; 'jobs runs' shows history") { socket, json };
        list.SetAction((result, cancellationToken) => ServiceClient.RunAsync(result.GetValue(socket)!, async client =>
        {
            var reply = await client.Management.ListJobsAsync(new ListJobsRequest(), cancellationToken: cancellationToken);
            Print(reply, result.GetValue(json), () =>
            {
                foreach (var j in reply.Jobs)
                {
                    string when = j.Schedule.Length == 0 ? "no schedule" : $"schedule '{j.Schedule}' next {Time(j.NextRun)}";
                    string origin = j.ClusterRevision == 0 ? "" : $" (cluster, revision {j.ClusterRevision})";
                    Console.WriteLine($"{j.Name,-16} {j.Storage,-12} {(j.Enabled ? "" : "disabled "),0}{when} last {Time(j.LastRun)} {(j.LastRun is null ? "" : Names.Of(j.LastState))}{origin}");
                }
            });
            return ExitCodes.Success;
        }));
        var limit = new Option<uint>("--limit") { Description = "At most this many runs", DefaultValueFactory = _ => 20 };
        var runsSocket = ServiceOptions.Socket();
        var runsJson = CommonOptions.Json();
        var clusterRuns = new Option<bool>("--cluster") { Description = "Every host's runs, from the cluster's run records in etcd" };
        var runs = new Command("runs", "Past runs with per-guest results (sizes, durations, bitmap modes, consistency)") { limit, clusterRuns, runsSocket, runsJson };
        runs.SetAction((result, cancellationToken) => ServiceClient.RunAsync(result.GetValue(runsSocket)!, async client =>
        {
            var reply = await client.Management.ListRunsAsync(new ListRunsRequest { Limit = result.GetValue(limit), Cluster = result.GetValue(clusterRuns) },
                cancellationToken: cancellationToken);
            Print(reply, result.GetValue(runsJson), () =>
            {
                foreach (var r in reply.Runs)
                {
                    Console.WriteLine($"{Time(r.Created)} {(r.Node.Length > 0 ? r.Node + " " : "")}{r.Kind,-7} {r.Job,-16} {Names.Of(r.State),-9} {r.TaskId} {r.Error}");
                    foreach (var g in r.Guests)
                    {
                        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                            $"    {g.GuestId,-8} {Names.Of(g.State),-9} {g.DurationSeconds,7:F1} s {g.BytesRead,14} B read {g.Consistency,-11} {string.Join(",", g.BitmapModes)} {g.ArchiveName}{g.Error}"));
                    }
                }
            });
            return ExitCodes.Success;
        }));
        list.Subcommands.Add(runs);
        return list;
    }

    public static Command Status()
    {
        var socket = ServiceOptions.Socket();
        var json = CommonOptions.Json();
        var clusterHosts = new Option<bool>("--cluster") { Description = "Every host of the cluster too: alive, guests, definitions revision, unfinished runs (from etcd)" };
        var command = new Command("status", "The service's tasks, backup slots and next scheduled runs") { clusterHosts, socket, json };
        command.SetAction((result, cancellationToken) => ServiceClient.RunAsync(result.GetValue(socket)!, async client =>
        {
            var reply = await client.Management.GetStatusAsync(new GetStatusRequest { Cluster = result.GetValue(clusterHosts) }, cancellationToken: cancellationToken);
            Print(reply, result.GetValue(json), () =>
            {
                Console.WriteLine($"node {reply.Node}: {reply.RunningBackups} of {reply.MaxConcurrentBackups} backup slot(s) in use");
                if (reply.ClusterDefinitionsRevision != 0)
                {
                    Console.WriteLine($"cluster definitions: revision {reply.ClusterDefinitionsRevision}");
                }
                if (reply.ClusterDefinitionsError.Length > 0)
                {
                    Console.WriteLine($"cluster definitions NOT in use: {reply.ClusterDefinitionsError}");
                }
                foreach (var t in reply.Tasks)
                {
                    Console.WriteLine($"{t.TaskId} {t.Kind,-7} {t.Job,-16} {Names.Of(t.State),-9} {Time(t.Created)} {t.Error}");
                }
                foreach (var j in reply.Jobs.Where(j => j.NextRun is not null))
                {
                    Console.WriteLine($"job {j.Name} next {Time(j.NextRun)}");
                }
                foreach (var h in reply.ClusterHosts)
                {
                    Console.WriteLine($"host {h.Node,-16} {(h.Alive ? "alive" : "GONE"),-5} definitions {h.DefinitionsRevision} guests [{string.Join(' ', h.Guests)}]");
                    foreach (var t in h.Running)
                    {
                        Console.WriteLine($"    {t.TaskId} {t.Kind,-7} {t.Job,-16} {Names.Of(t.State),-9} {Time(t.Created)} {string.Join(' ', t.Guests.Select(g => g.GuestId))} {t.Error}");
                    }
                }
            });
            return ExitCodes.Success;
        }));
        return command;
    }

    public static Command Cancel()
    {
        var socket = ServiceOptions.Socket();
        var task = new Argument<string>("task") { Description = "The task id (see status)" };
        var command = new Command("cancel", "Cancel a task; its running backup tears down and cleans up before it ends") { task, socket };
        command.SetAction((result, cancellationToken) => ServiceClient.RunAsync(result.GetValue(socket)!, async client =>
        {
            await client.Management.CancelAsync(new CancelRequest { TaskId = result.GetValue(task)! }, cancellationToken: cancellationToken);
            return ExitCodes.Success;
        }));
        return command;
    }

    public static Command Watch()
    {
        var socket = ServiceOptions.Socket();
        var json = CommonOptions.Json();
        var task = new Argument<string>("task") { Description = "The task id (see status)" };
        var command = new Command("watch", "Follow a task's progress and log to its end; the exit status is the task's") { task, socket, json };
        command.SetAction((result, cancellationToken) => ServiceClient.RunAsync(result.GetValue(socket)!,
            client => TaskFollower.FollowAsync(client, result.GetValue(task)!, result.GetValue(json), cancellationToken)));
        return command;
    }

    /// <summary>Adds <c>providers list</c> (through the service) beside <c>providers info</c>.</summary>
    public static void AddProvidersList(Command providers)
    {
        var socket = ServiceOptions.Socket();
        var json = CommonOptions.Json();
        var list = new Command("list", "Each configured storage's provider: identity and health (the handshake is run now)") { socket, json };
        list.SetAction((result, cancellationToken) => ServiceClient.RunAsync(result.GetValue(socket)!, async client =>
        {
            var reply = await client.Management.ListProvidersAsync(new ListProvidersRequest(), cancellationToken: cancellationToken);
            Print(reply, result.GetValue(json), () =>
            {
                foreach (var p in reply.Providers)
                {
                    Console.WriteLine(p.Healthy
                        ? $"{p.Storage,-12} healthy   {p.Name} {p.Version} v{p.ProtocolMajor} {p.Endpoint} [{string.Join(' ', p.Capabilities)}]"
                        : $"{p.Storage,-12} unhealthy {p.Endpoint}: {p.Error}");
                }
            });
            return reply.Providers.All(p => p.Healthy) ? ExitCodes.Success : ExitCodes.ProviderUnreachable;
        }));
        providers.Subcommands.Add(list);
    }

    private static void Print(IMessage reply, bool json, Action text)
    {
        if (json)
        {
            Console.WriteLine(JsonFormatter.Default.Format(reply));
        }
        else
        {
            text();
        }
    }

    private static string Time(Google.Protobuf.WellKnownTypes.Timestamp? time) =>
        time is null ? "-" : time.ToDateTime().ToLocalTime().ToString("yyyy-MM-dd HH:mm:ss", CultureInfo.InvariantCulture);
}
