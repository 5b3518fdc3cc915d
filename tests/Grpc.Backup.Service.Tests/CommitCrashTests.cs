using System.Text.Json;
using Grpc.Backup.Service.Tests.Infrastructure;

namespace Grpc.Backup.Service.Tests;

/// <summary>
/// kill -9 of the host at each step around the provider's commit (issue 15): after the stream completed and the snapshot
/// was torn down but before BackupCleanup(success=true) was sent; after it returned OK but before the dirty bitmaps were
/// settled; after they were settled. The service stops exactly there (its test seam <c>TestPausePoint</c>, at the task
/// log line of that step) and is killed; each time QEMU is left as that step implies, the restarted service's crash
/// recovery leaves the guest clean, the repository holds the backup only if the provider committed it, and the next
/// incremental restores byte-exact to its instant.
/// </summary>
public sealed class CommitCrashTests
{
    /// <summary>The step's task log line, whether the provider committed by then, whether the bitmaps were settled.</summary>
    private static readonly (string Line, bool Committed, bool Settled)[] Steps =
    [
        ("stored; BackupCleanup(success=true) decides", false, false),
        ("BackupCleanup(success=true) returned OK", true, false),
        ("bitmaps committed: the next incremental starts at this backup's instant", true, true),
    ];

    [Fact]
    public async Task A_host_killed_at_each_step_around_the_commit_recovers_and_the_next_incremental_is_exact()
    {
        await using var service = ServiceProcess.Create();
        await using var guest = await DemoGuestProcess.StartAsync(service.Root.File("guest"), "--write-interval-ms", "20");
        await using var provider = await DirectoryProviderProcess.StartAsync();
        service.AddGuest(guest);
        service.AddDirectoryStorage("dir", provider);
        service.WriteConfig("jobs/daily.conf", $"storage: dir\nguests: 100\nfleecing-dir: {service.FleecingDirectory}\n");
        GuestGraph clean = await GuestGraph.QueryAsync(guest.Guest.QmpSocket);
        await service.StartAsync();
        await service.CliJsonAsync("backup", "--job", "daily");
        int committed = 1;

        foreach (var (line, providerCommitted, settled) in Steps)
        {
            string pause = service.Root.File("paused");
            await service.StopAsync();
            await service.StartAsync(new Dictionary<string, string?>
            {
                ["GRPC_BACKUPD_TEST_PAUSE_AT"] = line,
                ["GRPC_BACKUPD_TEST_PAUSE_FILE"] = pause,
            });
            var (exit, stdout, stderr) = await service.CliAsync("backup", "--job", "daily", "--no-wait");
            Assert.True(exit == 0, stderr + stdout);
            // The demo agent hashes every disk while frozen, which a loaded machine makes slow: hence the bound.
            var deadline = DateTime.UtcNow + TimeSpan.FromMinutes(4);
            while (!File.Exists(pause))
            {
                Assert.True(DateTime.UtcNow < deadline, $"the service never reached '{line}'\n{service.Log}");
                await Task.Delay(20);
            }
            await service.KillAsync();
            File.Delete(pause);

            // Every step is after the teardown: no node of the backup is left, only its bitmaps may wait.
            GuestGraph crashed = await GuestGraph.QueryAsync(guest.Guest.QmpSocket);
            Assert.True(crashed.Nodes.SequenceEqual(clean.Nodes) && crashed.Exports.SequenceEqual(clean.Exports), $"{line}: {crashed}");
            Assert.True(crashed.BackgroundBitmaps.Any() != settled, $"{line}: {crashed}");

            await service.StartAsync();
            GuestGraph recovered = await GuestGraph.QueryAsync(guest.Guest.QmpSocket);
            Assert.True(recovered.Nodes.SequenceEqual(clean.Nodes) && recovered.Exports.SequenceEqual(clean.Exports)
                && !recovered.BackgroundBitmaps.Any() && recovered.BackupObjects.Count == 0, $"{line}: after recovery {recovered}\n{service.Log}");
            Assert.Empty(Directory.GetFiles(service.FleecingDirectory));
            committed += providerCommitted ? 1 : 0;

            JsonElement next = await service.CliJsonAsync("backup", "--job", "daily");
            IReadOnlyDictionary<string, string> expected = guest.LastInstant();
            committed++;
            JsonElement result = next.GetProperty("guests")[0];
            string modes = string.Join(' ', result.GetProperty("bitmapModes").EnumerateArray().Select(m => m.GetString()!).Order(StringComparer.Ordinal));
            Assert.True(modes == "drive-virtio0:reuse drive-virtio1:reuse", $"{line}: {modes}\n{service.Log}");
            string target = service.Root.File($"restore-{committed}");
            JsonElement restore = await service.CliJsonAsync("restore", "--storage", "dir", "--archive", result.GetProperty("archiveName").GetString()!,
                "--target", target);
            Assert.Equal("TASK_STATE_SUCCEEDED", ScheduledJobTests.State(restore));
            foreach (var (device, sha) in expected)
            {
                Assert.True(sha == Checksums.Sha256File(Path.Combine(target, device + ".raw")), $"{line}: {device} differs from the instant");
            }
            Directory.Delete(target, recursive: true);
            // The provider holds the interrupted backup only if it committed it (recovery's BackupCleanup(failure)
            // removed an uncommitted one and left a committed one alone).
            JsonElement listed = await service.CliJsonAsync("list", "--storage", "dir", "--refresh");
            Assert.True(committed == ScheduledJobTests.Backups(listed).Count(), $"{line}: {listed}");
        }
    }
}
