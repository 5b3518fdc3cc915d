using System.Text.Json;
using Grpc.Backup.Service.Tests.Infrastructure;

namespace Grpc.Backup.Service.Tests;

/// <summary>
/// Jobs as an administrator configures them, end to end through grpc-backupd and the CLI against a real QEMU demo
/// guest and the directory provider: a cron schedule fires, the hook sees every vzdump phase, notes are rendered, and
/// retention after each backup keeps exactly the newest backups.
/// </summary>
public sealed class ScheduledJobTests
{
    [Fact]
    public async Task A_scheduled_job_fires_retention_keeps_the_newest_and_the_hook_sees_every_phase()
    {
        await using var service = ServiceProcess.Create();
        await using var guest = await DemoGuestProcess.StartAsync(service.Root.File("guest"));
        await using var provider = await DirectoryProviderProcess.StartAsync();
        string hookLog = service.Root.File("hook.log");
        string hook = HookScript.Create(service.Root.Path, hookLog);
        service.AddGuest(guest);
        service.AddDirectoryStorage("dir", provider);
        service.WriteConfig("storages/gone.conf", $"endpoint: unix:{service.Root.File("nothing.sock")}\n");
        service.WriteConfig("host.conf", "node: testnode\nmax-backups: 2\n");
        // Every 3 seconds (6 cron fields: seconds first).
        service.WriteConfig("jobs/nightly.conf", $$$"""
            storage: dir
            guests: all
            schedule: */3 * * * * *
            keep-last: 2
            notes-template: {{guestname}} ({{vmid}}) on {{node}}
            fleecing-dir: {{{service.FleecingDirectory}}}
            hook: {{{hook}}}
            """);
        // A job whose provider is unreachable: its hook sees job-abort.
        service.WriteConfig("jobs/broken.conf", $"storage: gone\nguests: 100\nhook: {hook}\n");
        await service.StartAsync();

        // Three scheduled runs, then stop the schedule by stopping the service. The bound only ends a hung test: a
        // loaded CI machine took 55 s for the first (full) run alone.
        var deadline = DateTime.UtcNow + TimeSpan.FromMinutes(10);
        JsonElement runs;
        while (true)
        {
            runs = await service.CliJsonAsync("jobs", "runs");
            int finished = Runs(runs).Count(r => r.GetProperty("job").GetString() == "nightly" && State(r) == "TASK_STATE_SUCCEEDED");
            if (finished >= 3)
            {
                break;
            }
            Assert.True(DateTime.UtcNow < deadline, "three scheduled runs did not finish in time: " + runs);
            await Task.Delay(500);
        }
        var (brokenExit, brokenOut, _) = await service.CliAsync("backup", "--job", "broken");
        Assert.Equal(1, brokenExit);
        // A graceful stop: a run in flight is cancelled and recorded, whatever step it was at.
        await service.StopAsync();
        // Off schedule, so the list stays still while it is checked.
        File.WriteAllLines(Path.Combine(service.ConfigDirectory, "jobs", "nightly.conf"),
            File.ReadAllLines(Path.Combine(service.ConfigDirectory, "jobs", "nightly.conf")).Where(l => !l.StartsWith("schedule", StringComparison.Ordinal)));

        // Retention: after each backup keep-last 2, so exactly the two newest stored archives remain.
        await service.StartAsync();
        JsonElement listed = await service.CliJsonAsync("list", "--storage", "dir", "--refresh");
        var archives = Backups(listed).Select(b => b.GetProperty("archiveName").GetString()!).ToList();
        var stored = Runs(await service.CliJsonAsync("jobs", "runs", "--limit", "100"))
            .Where(r => r.GetProperty("job").GetString() == "nightly")
            .SelectMany(r => r.GetProperty("guests").EnumerateArray())
            .Where(g => State(g) == "TASK_STATE_SUCCEEDED")
            .Select(g => g.GetProperty("archiveName").GetString()!).ToList();
        Assert.True(stored.Count >= 3, string.Join(' ', stored));
        // Archive names end in the backup's UTC time, so they sort by age.
        Assert.Equal(stored.OrderDescending(StringComparer.Ordinal).Take(2), archives.OrderDescending(StringComparer.Ordinal));
        Assert.All(Backups(listed), b => Assert.Equal("demo-100 (100) on testnode", b.GetProperty("notes").GetString()));

        // The hook saw every phase, in vzdump's order, for each run.
        IReadOnlyList<HookCall> calls = HookScript.Read(hookLog);
        var firstRun = calls.TakeWhile(c => c.Phase != "job-end").Append(calls.First(c => c.Phase == "job-end")).Select(c => c.Phase).ToList();
        Assert.Equal(["job-start", "backup-start", "backup-end", "log-end", "job-end"], firstRun);
        HookCall end = calls.First(c => c.Phase == "backup-end");
        Assert.Equal(("100", "dir", "testnode"), (end.Guest, end.Storage, end.Node));
        Assert.Contains(end.Target, stored);
        HookCall logEnd = calls.First(c => c.Phase == "log-end");
        Assert.Contains("stored", File.ReadAllText(logEnd.LogFile), StringComparison.Ordinal);
        Assert.Contains(calls, c => c.Phase == "job-abort" && c.Storage == "gone");
        Assert.DoesNotContain("job-start gone", string.Join('\n', calls.Select(c => $"{c.Phase} {c.Storage}")), StringComparison.Ordinal);
        // The broken job's output says why it failed: its provider's socket cannot be reached.
        Assert.Contains("nothing.sock", brokenOut, StringComparison.Ordinal);
        Assert.Contains(": failed", brokenOut, StringComparison.Ordinal);
    }

    [Fact]
    public async Task After_downtime_a_repeat_missed_job_runs_once_and_the_others_wait()
    {
        await using var service = ServiceProcess.Create();
        await using var guest = await DemoGuestProcess.StartAsync(service.Root.File("guest"));
        await using var provider = await DirectoryProviderProcess.StartAsync();
        service.AddGuest(guest);
        service.AddDirectoryStorage("dir", provider);
        // Yearly: due once in the two years the service was "down", never again during the test.
        service.WriteConfig("jobs/catchup.conf", $"storage: dir\nguests: 100\nschedule: 0 0 1 1 *\nrepeat-missed: yes\nfleecing-dir: {service.FleecingDirectory}\n");
        service.WriteConfig("jobs/skip.conf", $"storage: dir\nguests: 100\nschedule: 0 0 1 1 *\nfleecing-dir: {service.FleecingDirectory}\n");
        await service.StartAsync();
        await service.StopAsync();
        // The last firing of both jobs, as a service that went down two years ago left it.
        using (var db = new Microsoft.Data.Sqlite.SqliteConnection($"Data Source={Path.Combine(service.StateDirectory, "catalog.db")};Pooling=false"))
        {
            db.Open();
            using var update = db.CreateCommand();
            update.CommandText = "UPDATE schedule_state SET last_fire = $t";
            update.Parameters.AddWithValue("$t", DateTime.UtcNow.AddYears(-2).ToString("o", System.Globalization.CultureInfo.InvariantCulture));
            Assert.Equal(2, update.ExecuteNonQuery());
        }

        DateTime restarted = DateTime.UtcNow.AddSeconds(-1);
        await service.StartAsync();
        // Bounds for a hang, not for speed: the missed run is a whole backup, minutes on a loaded machine (a 60 s bound
        // failed once under a load average of 50).
        var deadline = DateTime.UtcNow + TimeSpan.FromMinutes(10);
        List<JsonElement> runs;
        while (!(runs = [.. Runs(await service.CliJsonAsync("jobs", "runs"))]).Any(r => State(r) == "TASK_STATE_SUCCEEDED"))
        {
            Assert.True(DateTime.UtcNow < deadline, "the missed run did not happen");
            await Task.Delay(250);
        }
        // The scheduler fires missed runs only in its start-up pass, which records a last firing for every job it
        // settles. Once both are recorded after the restart, the next firing of either is next January: any second run
        // must already be in the list.
        while (LastFires(service).Count(f => f >= restarted) < 2)
        {
            Assert.True(DateTime.UtcNow < deadline, "the scheduler did not settle both jobs");
            await Task.Delay(50);
        }
        runs = [.. Runs(await service.CliJsonAsync("jobs", "runs"))];
        Assert.Equal(["catchup"], runs.Select(r => r.GetProperty("job").GetString()!));
        JsonElement jobs = await service.CliJsonAsync("jobs");
        Assert.All(jobs.GetProperty("jobs").EnumerateArray(), j => Assert.True(
            DateTime.Parse(j.GetProperty("nextRun").GetString()!, System.Globalization.CultureInfo.InvariantCulture) > DateTime.UtcNow));
    }

    private static List<DateTime> LastFires(ServiceProcess service)
    {
        using var db = new Microsoft.Data.Sqlite.SqliteConnection($"Data Source={Path.Combine(service.StateDirectory, "catalog.db")};Mode=ReadOnly;Pooling=false");
        db.Open();
        using var query = db.CreateCommand();
        query.CommandText = "SELECT last_fire FROM schedule_state";
        using var reader = query.ExecuteReader();
        var fires = new List<DateTime>();
        while (reader.Read())
        {
            fires.Add(DateTime.Parse(reader.GetString(0), System.Globalization.CultureInfo.InvariantCulture,
                System.Globalization.DateTimeStyles.AdjustToUniversal | System.Globalization.DateTimeStyles.AssumeUniversal));
        }
        return fires;
    }

    internal static IEnumerable<JsonElement> Runs(JsonElement reply) =>
        reply.TryGetProperty("runs", out JsonElement runs) ? runs.EnumerateArray() : [];

    internal static IEnumerable<JsonElement> Backups(JsonElement reply) =>
        reply.TryGetProperty("backups", out JsonElement backups) ? backups.EnumerateArray() : [];

    internal static string State(JsonElement run) =>
        run.TryGetProperty("state", out JsonElement state) ? state.GetString()! : "TASK_STATE_UNSPECIFIED";
}
