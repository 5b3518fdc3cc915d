using System.Text.Json;
using Grpc.Backup.Qemu;
using Grpc.Backup.Service.Tests.Infrastructure;

namespace Grpc.Backup.Service.Tests;

/// <summary>
/// Cancel and crash, end to end: a cancelled backup tears down and reports backup-abort; a kill -9 of grpc-backupd in
/// the middle of a backup leaves QEMU holding its snapshot graph, and the restarted service removes all of it (nodes,
/// exports, fleecing images, background bitmaps folded back), tells the provider, and the next incremental backup
/// restores byte-exact to its instant.
/// </summary>
public sealed class CrashRecoveryTests
{
    [Fact]
    public async Task Cancel_tears_down_and_kill_9_mid_backup_is_reconciled_so_the_next_incremental_is_exact()
    {
        await using var service = ServiceProcess.Create();
        await using var guest = await DemoGuestProcess.StartAsync(service.Root.File("guest"));
        await using var provider = await DirectoryProviderProcess.StartAsync();
        string hookLog = service.Root.File("hook.log");
        string hook = HookScript.Create(service.Root.Path, hookLog);
        service.AddGuest(guest);
        service.AddDirectoryStorage("dir", provider);
        service.WriteConfig("jobs/daily.conf", $"storage: dir\nguests: 100\nfleecing-dir: {service.FleecingDirectory}\nhook: {hook}\n");
        // The provider paces itself to 1 MiB/s: long enough to cancel or kill in the middle.
        service.WriteConfig("jobs/slow.conf", $"storage: dir\nguests: 100\nfleecing-dir: {service.FleecingDirectory}\nbwlimit: 1M\nhook: {hook}\n");
        await service.StartAsync();
        IReadOnlyList<string> cleanNodes = await NodeNamesAsync(guest);

        var (fullExit, fullOut, fullErr) = await service.CliAsync("backup", "--job", "daily");
        Assert.True(fullExit == 0, fullErr + fullOut);

        // Cancel: cooperative, and the teardown runs before the task ends.
        string cancelled = (await service.CliAsync("backup", "--job", "slow", "--no-wait")).Stdout.Trim();
        await WaitUntilAsync(() => Directory.GetFiles(service.FleecingDirectory).Length > 0, TimeSpan.FromSeconds(30));
        Assert.Equal(0, (await service.CliAsync("cancel", cancelled)).ExitCode);
        var (watchExit, watchOut, _) = await service.CliAsync("watch", cancelled);
        Assert.True(watchExit == 6, watchOut);
        Assert.Empty(Directory.GetFiles(service.FleecingDirectory));
        Assert.Equal(cleanNodes, await NodeNamesAsync(guest));
        Assert.Contains(HookScript.Read(hookLog), c => c.Phase == "backup-abort" && c.Guest == "100");

        // kill -9 in the middle of a backup: QEMU keeps the snapshot graph the dead service built.
        int reusedBefore = CountOf(service.Log, ", bitmap Reuse");
        string interrupted = (await service.CliAsync("backup", "--job", "slow", "--no-wait")).Stdout.Trim();
        await WaitUntilAsync(() => Directory.GetFiles(service.FleecingDirectory).Length > 0, TimeSpan.FromSeconds(30));
        // Killed once the snapshot graph is complete and the copy runs: the service logs each disk's bitmap mode
        // when it hands the exports over. (QMP cannot be asked meanwhile: the guest's monitor takes one client, the
        // service.) The demo agent hashes every disk while frozen, which a loaded machine makes slow: hence the bound.
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(180);
        while (CountOf(service.Log, ", bitmap Reuse") < reusedBefore + 2)
        {
            Assert.True(DateTime.UtcNow < deadline, $"the interrupted backup never started its copy\n{service.Log}");
            await Task.Delay(20);
        }
        await service.KillAsync();
        Assert.NotEmpty(Directory.GetFiles(service.FleecingDirectory));
        Assert.Contains(await NodeNamesAsync(guest), n => n.StartsWith("gb", StringComparison.Ordinal));
        Assert.Contains(await BitmapNamesAsync(guest), b => b.EndsWith("-bg", StringComparison.Ordinal));

        await service.StartAsync();
        Assert.Empty(Directory.GetFiles(service.FleecingDirectory));
        Assert.Equal(cleanNodes, await NodeNamesAsync(guest));
        Assert.DoesNotContain(await BitmapNamesAsync(guest), b => b.EndsWith("-bg", StringComparison.Ordinal));
        await using (var qmp = await QmpClient.ConnectAsync(guest.Guest.QmpSocket))
        {
            var exports = (await qmp.ExecuteAsync("query-block-exports"))!.AsArray();
            Assert.All(exports, e => Assert.Equal("fuse", (string?)e!["type"]));
        }
        Assert.Empty(Directory.GetFiles(service.Root.File("run"), "*.sock"));
        JsonElement runs = await service.CliJsonAsync("jobs", "runs");
        JsonElement crashed = ScheduledJobTests.Runs(runs).Single(r => r.GetProperty("taskId").GetString() == interrupted);
        Assert.Equal("TASK_STATE_FAILED", ScheduledJobTests.State(crashed));
        Assert.Contains("interrupted", crashed.GetProperty("error").GetString(), StringComparison.Ordinal);

        // The next backup is incremental (the background bitmap was folded back) and restores to its instant.
        JsonElement next = await service.CliJsonAsync("backup", "--job", "daily");
        IReadOnlyDictionary<string, string> expected = guest.LastInstant();
        JsonElement result = next.GetProperty("guests")[0];
        string modes = string.Join(' ', result.GetProperty("bitmapModes").EnumerateArray().Select(m => m.GetString()!).Order(StringComparer.Ordinal));
        Assert.True(modes == "drive-virtio0:reuse drive-virtio1:reuse", $"{modes}\n{service.Log}");
        string archive = result.GetProperty("archiveName").GetString()!;
        string target = service.Root.File("restore");
        JsonElement restore = await service.CliJsonAsync("restore", "--storage", "dir", "--archive", archive, "--target", target);
        Assert.Equal("TASK_STATE_SUCCEEDED", ScheduledJobTests.State(restore));
        foreach (var (device, sha) in expected)
        {
            Assert.Equal(sha, Checksums.Sha256File(Path.Combine(target, device + ".raw")));
        }
        // Only complete backups are listed: the full and the last incremental, not the cancelled or crashed ones.
        JsonElement listed = await service.CliJsonAsync("list", "--storage", "dir", "--refresh");
        Assert.Equal(2, ScheduledJobTests.Backups(listed).Count());
    }

    private static int CountOf(string text, string part)
    {
        int count = 0;
        for (int i = text.IndexOf(part, StringComparison.Ordinal); i >= 0; i = text.IndexOf(part, i + part.Length, StringComparison.Ordinal))
        {
            count++;
        }
        return count;
    }

    private static async Task<IReadOnlyList<string>> NodeNamesAsync(DemoGuestProcess guest) =>
        (await GuestGraph.QueryAsync(guest.Guest.QmpSocket)).Nodes;

    private static async Task<IReadOnlyList<string>> BitmapNamesAsync(DemoGuestProcess guest) =>
        (await GuestGraph.QueryAsync(guest.Guest.QmpSocket)).Bitmaps;

    internal static async Task WaitUntilAsync(Func<bool> condition, TimeSpan timeout)
    {
        var deadline = DateTime.UtcNow + timeout;
        while (!condition())
        {
            Assert.True(DateTime.UtcNow < deadline, "timed out waiting");
            await Task.Delay(20);
        }
    }
}
