using Grpc.Backup.Service.Tests.Infrastructure;
using Grpc.Backup.Tests.Infrastructure;
using Microsoft.Data.Sqlite;

namespace Grpc.Backup.Service.Tests;

/// <summary>
/// The host's own state, end to end through grpc-backupd and the CLI: the run history and its task logs follow
/// host.conf's policy, a prune takes the removed backups' records with it, and the operator's output says what happened.
/// </summary>
public sealed class HostStateTests
{
    [Fact]
    public async Task History_and_records_follow_the_policy_and_prune_and_jobs_print_what_they_did()
    {
        await using var service = ServiceProcess.Create();
        await using var guest = await DemoGuestProcess.StartAsync(service.Root.File("guest"));
        await using var provider = await DirectoryProviderProcess.StartAsync();
        service.AddGuest(guest);
        service.AddDirectoryStorage("dir", provider);
        service.WriteConfig("host.conf", "node: testnode\nhistory-keep-runs: 2\n");
        // No schedule: run by hand only.
        service.WriteConfig("jobs/manual.conf", $"storage: dir\nguests: 100\nfleecing-dir: {service.FleecingDirectory}\n");
        await service.StartAsync();
        for (int i = 0; i < 3; i++)
        {
            var (exit, stdout, stderr) = await service.CliAsync("backup", "--job", "manual");
            Assert.True(exit == 0, stdout + stderr);
        }

        // Three runs, two kept, and only the kept runs' task logs remain.
        var runs = ScheduledJobTests.Runs(await service.CliJsonAsync("jobs", "runs")).ToList();
        Assert.Equal(2, runs.Count);
        string[] logs = Directory.GetFiles(Path.Combine(service.StateDirectory, "logs"));
        Assert.Equal(runs.Select(r => r.GetProperty("taskId").GetString()!).Order(StringComparer.Ordinal),
            logs.Select(l => Path.GetFileName(l)[..36]).Order(StringComparer.Ordinal));

        var (_, jobs, _) = await service.CliAsync("jobs");
        string line = jobs.Split('\n').Single(l => l.StartsWith("manual", StringComparison.Ordinal));
        Assert.Contains("no schedule", line, StringComparison.Ordinal);
        Assert.DoesNotContain("schedule ''", line, StringComparison.Ordinal);

        var (dryExit, dry, dryErr) = await service.CliAsync("prune", "--storage", "dir", "--keep-last", "1", "--dry-run");
        Assert.True(dryExit == 0, dry + dryErr);
        Assert.Equal(2, dry.Split('\n').Count(l => l.StartsWith("would remove ", StringComparison.Ordinal)));
        Assert.DoesNotContain("removed", dry, StringComparison.Ordinal);
        Assert.Equal(3, ArchivesWithChecksums(service));

        var (pruneExit, pruned, pruneErr) = await service.CliAsync("prune", "--storage", "dir", "--keep-last", "1");
        Assert.True(pruneExit == 0, pruned + pruneErr);
        Assert.Equal(2, pruned.Split('\n').Count(l => l.StartsWith("removed ", StringComparison.Ordinal)));
        // The removed backups' checksums went with them.
        Assert.Equal(1, ArchivesWithChecksums(service));
        // The catalog was checkpointed after the prune: its WAL is empty.
        Assert.Equal(0, new FileInfo(Path.Combine(service.StateDirectory, "catalog.db-wal")).Length);
    }

    private static long ArchivesWithChecksums(ServiceProcess service)
    {
        using var db = new SqliteConnection($"Data Source={Path.Combine(service.StateDirectory, "catalog.db")};Mode=ReadOnly;Pooling=false");
        db.Open();
        using SqliteCommand count = db.CreateCommand();
        count.CommandText = "SELECT count(DISTINCT archive) FROM volume_checksums";
        return (long)count.ExecuteScalar()!;
    }
}
