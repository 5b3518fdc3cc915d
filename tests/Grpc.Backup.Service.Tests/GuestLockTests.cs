using System.Text.Json;
using Grpc.Backup.Service.Tests.Infrastructure;

namespace Grpc.Backup.Service.Tests;

/// <summary>
/// One guest lock for everything (issue 15): while grpc-backupd backs up a guest, the CLI's direct mode, sharing the
/// lock directory, is refused with one clear line and touches nothing; the service's backup completes and restores
/// byte-exact to its instant.
/// </summary>
public sealed class GuestLockTests
{
    [Fact]
    public async Task A_direct_backup_of_a_guest_the_service_is_backing_up_is_refused_and_the_first_completes_exactly()
    {
        await using var service = ServiceProcess.Create();
        await using var guest = await DemoGuestProcess.StartAsync(service.Root.File("guest"));
        await using var provider = await DirectoryProviderProcess.StartAsync();
        service.AddGuest(guest);
        service.AddDirectoryStorage("dir", provider);
        service.WriteConfig("jobs/daily.conf", $"storage: dir\nguests: 100\nfleecing-dir: {service.FleecingDirectory}\n");
        // The incremental runs at 256 KiB/s: long enough for the CLI to start while the service holds the guest.
        service.WriteConfig("jobs/slow.conf", $"storage: dir\nguests: 100\nfleecing-dir: {service.FleecingDirectory}\nbwlimit: 256K\n");
        await service.StartAsync();
        var (fullExit, fullOut, fullErr) = await service.CliAsync("backup", "--job", "daily");
        Assert.True(fullExit == 0, fullErr + fullOut);

        string task = (await service.CliAsync("backup", "--job", "slow", "--no-wait")).Stdout.Trim();
        await CrashRecoveryTests.WaitUntilAsync(() => Directory.GetFiles(service.FleecingDirectory).Length > 0, TimeSpan.FromSeconds(60));
        string directFleece = service.Root.File("direct-fleece");
        Directory.CreateDirectory(directFleece);
        var (exit, stdout, stderr) = await service.CliAsync("backup", "--endpoint", provider.Endpoint.ToString(), "--inventory", guest.InventoryDirectory,
            "--guest", "100", "--fleecing-dir", directFleece, "--storage", "dir", "--lock-dir", service.LockDirectory);
        Assert.True(exit == 8, $"exit {exit}: {stderr}{stdout}");
        Assert.Equal($"grpc-backup: guest 100 is being backed up by another process (pid {service.Process!.Id}); lock {Path.Combine(service.LockDirectory, "guest-100.lock")}",
            stderr.Trim().Split('\n')[^1]); // after the CLI's connection log line: one line, no stack trace
        Assert.Empty(Directory.GetFiles(directFleece));

        var (watchExit, watchOut, _) = await service.CliAsync("watch", task, "--json");
        Assert.True(watchExit == 0, watchOut + service.Log);
        IReadOnlyDictionary<string, string> expected = guest.LastInstant();
        using var document = JsonDocument.Parse(watchOut);
        string archive = document.RootElement.GetProperty("guests")[0].GetProperty("archiveName").GetString()!;
        string target = service.Root.File("restore");
        JsonElement restore = await service.CliJsonAsync("restore", "--storage", "dir", "--archive", archive, "--target", target);
        Assert.Equal("TASK_STATE_SUCCEEDED", ScheduledJobTests.State(restore));
        foreach (var (device, sha) in expected)
        {
            Assert.Equal(sha, Checksums.Sha256File(Path.Combine(target, device + ".raw")));
        }
    }
}
