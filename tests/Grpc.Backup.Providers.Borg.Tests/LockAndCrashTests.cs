using Grpc.Backup.Protocol;
using Grpc.Backup.Protocol.V1;
using Grpc.Backup.Providers.Borg.Tests.Infrastructure;
using Grpc.Core;
using static Grpc.Backup.Providers.Directory.Tests.Infrastructure.Images;

namespace Grpc.Backup.Providers.Borg.Tests;

/// <summary>Stale locks, killed processes and a wrong passphrase: clear errors, and a repository that stays sound.</summary>
public sealed class LockAndCrashTests
{
    private const string Device = "drive-scsi0";

    [Fact]
    public async Task A_borg_killed_mid_backup_leaves_a_stale_lock_that_is_reported_until_the_operator_allows_breaking_it()
    {
        await using var provider = await BorgProvider.StartAsync();
        var host = new SimulatedHost(provider.Connection);
        string image = provider.Work("disk.raw");
        CreateSparse(image, 64 * MiB);
        WriteRandom(image, 0, 64 * MiB, seed: 9);
        string expected = await Sha256OfFileAsync(image);

        // A backup paced to 2 MiB/s is still running when its borg is killed with SIGKILL.
        await using (QemuNbdExport export = await QemuNbdExport.ReadOnlyRawAsync(image, provider.Work("e0.sock")))
        {
            string job = await host.JobInitAsync();
            string backupId = Guid.NewGuid().ToString();
            await host.BackupInitAsync(job, backupId, "500", DateTimeOffset.UtcNow);
            var streaming = new FirstProgress();
            Task<List<BackupVmEvent>> running = host.BackupVmAsync(backupId, [new VolumeSpec(Device, 64 * MiB, BitmapMode.New, export)],
                "name: vm500\n"u8.ToArray(), bandwidth: 2 * (ulong)MiB, cancelWhen: streaming.Observe);
            int borg = await WaitForAsync(() => provider.BorgChildren().FirstOrDefault(p => BorgProvider.CommandLine(p).Contains("import-tar",
                StringComparison.Ordinal)));
            // Once borg holds the repository lock, kill it.
            await WaitForAsync(() => System.IO.Directory.Exists(Path.Combine(provider.RepositoryPath, "lock.exclusive")) ? 1 : 0);
            // and once data flows into it (the provider reported bytes done), so the kill lands mid-archive.
            await streaming.WaitAsync(running);
            System.Diagnostics.Process.GetProcessById(borg).Kill();
            await Assert.ThrowsAnyAsync<RpcException>(() => running);
            await host.BackupCleanupAsync(job, backupId, success: false).ContinueWith(_ => { }, TaskScheduler.Default);
        }

        RpcException stale = await Assert.ThrowsAsync<RpcException>(() => host.JobInitAsync());
        Assert.Equal(StatusCode.Aborted, stale.StatusCode);
        Assert.Equal(ErrorReason.RepositoryLocked, ProviderErrors.GetReason(stale));
        Assert.Contains("stale lock", stale.Status.Detail, StringComparison.Ordinal);

        await provider.RestartAsync("--break-stale-locks", "true");
        host = new SimulatedHost(provider.Connection);
        BackupOutcome next;
        await using (QemuNbdExport export = await QemuNbdExport.ReadOnlyRawAsync(image, provider.Work("e1.sock")))
        {
            next = await host.BackupAsync("500", DateTimeOffset.UtcNow, [new VolumeSpec(Device, 64 * MiB, BitmapMode.New, export)]);
        }
        Assert.Equal(expected, (await host.RestoreAsync(next.ArchiveName, Device)).Sha256);
        (int check, _, string errors) = await provider.BorgAsync("check", provider.RepositoryPath);
        Assert.True(check == 0, errors);
    }

    [Fact]
    public async Task A_provider_killed_mid_backup_leaves_the_repository_sound_and_the_next_backup_works()
    {
        await using var provider = await BorgProvider.StartAsync();
        var host = new SimulatedHost(provider.Connection);
        string image = provider.Work("disk.raw");
        CreateSparse(image, 64 * MiB);
        WriteRandom(image, 0, 64 * MiB, seed: 10);
        string expected = await Sha256OfFileAsync(image);
        await using (QemuNbdExport export = await QemuNbdExport.ReadOnlyRawAsync(image, provider.Work("e0.sock")))
        {
            string job = await host.JobInitAsync();
            string backupId = Guid.NewGuid().ToString();
            await host.BackupInitAsync(job, backupId, "600", DateTimeOffset.UtcNow);
            var streaming = new FirstProgress();
            Task<List<BackupVmEvent>> running = host.BackupVmAsync(backupId, [new VolumeSpec(Device, 64 * MiB, BitmapMode.New, export)],
                "name: vm600\n"u8.ToArray(), bandwidth: 2 * (ulong)MiB, cancelWhen: streaming.Observe);
            await WaitForAsync(() => provider.BorgChildren().FirstOrDefault(p => BorgProvider.CommandLine(p).Contains("import-tar",
                StringComparison.Ordinal)));
            await WaitForAsync(() => System.IO.Directory.Exists(Path.Combine(provider.RepositoryPath, "lock.exclusive")) ? 1 : 0);
            // and once data flows into it (the provider reported bytes done), so the kill lands mid-archive.
            await streaming.WaitAsync(running);
            System.Diagnostics.Process.GetProcessById(provider.Process.Id).Kill(); // the provider alone, not its borg
            await Assert.ThrowsAnyAsync<Exception>(() => running);
        }
        await provider.RestartAsync();
        host = new SimulatedHost(provider.Connection);
        BackupOutcome next;
        await using (QemuNbdExport export = await QemuNbdExport.ReadOnlyRawAsync(image, provider.Work("e1.sock")))
        {
            next = await host.BackupAsync("600", DateTimeOffset.UtcNow.AddMinutes(1), [new VolumeSpec(Device, 64 * MiB, BitmapMode.New, export)]);
        }
        Assert.Equal(expected, (await host.RestoreAsync(next.ArchiveName, Device)).Sha256);
        ListBackupsResponse list = await provider.Connection.Repository.ListBackupsAsync(new ListBackupsRequest { GuestId = "600" });
        Assert.Equal([next.ArchiveName], list.Backups.Select(b => b.ArchiveName));
        (int check, _, string errors) = await provider.BorgAsync("check", provider.RepositoryPath);
        Assert.True(check == 0, errors);
    }

    [Fact]
    public async Task A_wrong_passphrase_fails_JobInit_clearly()
    {
        await using var provider = await BorgProvider.StartAsync();
        string wrong = provider.Work("wrong-passphrase");
        await File.WriteAllTextAsync(wrong, "not-the-passphrase\n");
        await ChildProcess.RunAsync("chown", [$"{BorgProvider.Nobody}", wrong]);
        await provider.RestartAsync("--passphrase-file", wrong);
        RpcException e = await Assert.ThrowsAsync<RpcException>(() => new SimulatedHost(provider.Connection).JobInitAsync());
        Assert.Equal(StatusCode.Unauthenticated, e.StatusCode);
        Assert.Equal(ErrorReason.AuthenticationFailed, ProviderErrors.GetReason(e));
        Assert.DoesNotContain("not-the-passphrase", provider.Process.StandardError, StringComparison.Ordinal);
    }

    private static async Task<int> WaitForAsync(Func<int> find)
    {
        var deadline = DateTime.UtcNow.AddSeconds(60);
        while (true)
        {
            int pid = find();
            if (pid > 0)
            {
                return pid;
            }
            Assert.True(DateTime.UtcNow < deadline, "timed out waiting for borg");
            await Task.Delay(20);
        }
    }

    /// <summary>Completes at the first progress event with bytes done: the provider is streaming into borg.</summary>
    private sealed class FirstProgress
    {
        private readonly TaskCompletionSource _seen = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public bool Observe(BackupVmEvent e)
        {
            if (e.EventCase == BackupVmEvent.EventOneofCase.Progress && e.Progress.BytesDone > 0)
            {
                _seen.TrySetResult();
            }
            return false;
        }

        public async Task WaitAsync(Task running)
        {
            await Task.WhenAny(_seen.Task, running);
            Assert.True(_seen.Task.IsCompleted, "the backup ended before any data flowed");
        }
    }
}
