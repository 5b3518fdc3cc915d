using Grpc.Backup.Host;
using Grpc.Backup.Orchestrator;
using Grpc.Backup.Protocol.V1;
using Grpc.Backup.Tests.Infrastructure;
using Microsoft.Extensions.Logging.Abstractions;

namespace Grpc.Backup.Tests;

/// <summary>
/// vzdump's backup modes on a real qemu-system-x86_64 VM (TCG, no guest OS): the guest's run state after the job equals
/// its state before it, on success and on failure, and the data restores exactly.
/// </summary>
public sealed class BackupModeTests
{
    [Theory]
    [InlineData(VmBackupMode.Snapshot)]
    [InlineData(VmBackupMode.Suspend)]
    public async Task A_running_guest_is_running_again_after_the_backup(VmBackupMode mode)
    {
        using var work = new TempDirectory();
        await using var vm = await SystemVmProcess.StartAsync(work.File("vm"));
        await using var provider = await DirectoryProviderProcess.StartAsync();
        await using var connection = await ProviderConnection.ConnectAsync(provider.Endpoint);
        Assert.Equal("running", await vm.StatusAsync());

        VmBackupResult result = await BackupAsync(connection, vm, work, mode);

        Assert.Equal("running", await vm.StatusAsync());
        // Paused exactly once (snapshot: around the switch, no agent; suspend: around the whole setup) and resumed.
        Assert.Equal(["STOP", "RESUME"], vm.DrainEvents());
        Assert.Equal(Consistency.Crash, result.Consistency);
        await AssertRestoresImageAsync(connection, result, vm, work.File("restore"));
    }

    [Fact]
    public async Task Stop_mode_on_a_guest_that_never_shuts_down_fails_and_leaves_it_running()
    {
        using var work = new TempDirectory();
        await using var vm = await SystemVmProcess.StartAsync(work.File("vm"));
        await using var provider = await DirectoryProviderProcess.StartAsync();
        await using var connection = await ProviderConnection.ConnectAsync(provider.Endpoint);

        var error = await Assert.ThrowsAsync<BackupException>(() => BackupAsync(connection, vm, work, VmBackupMode.Stop,
            shutdownTimeout: TimeSpan.FromSeconds(2)));

        Assert.Contains("did not shut down", error.Message, StringComparison.Ordinal);
        Assert.Equal("running", await vm.StatusAsync());
        Assert.Equal(["POWERDOWN"], vm.DrainEvents());
        Assert.Empty(Directory.GetFiles(work.File("fleece")));
    }

    [Theory]
    [InlineData(VmBackupMode.Snapshot)]
    [InlineData(VmBackupMode.Suspend)]
    [InlineData(VmBackupMode.Stop)]
    public async Task A_guest_that_is_not_running_stays_so(VmBackupMode mode)
    {
        using var work = new TempDirectory();
        await using var vm = await SystemVmProcess.StartAsync(work.File("vm"), paused: true);
        await using var provider = await DirectoryProviderProcess.StartAsync();
        await using var connection = await ProviderConnection.ConnectAsync(provider.Endpoint);
        Assert.Equal("prelaunch", await vm.StatusAsync());

        VmBackupResult result = await BackupAsync(connection, vm, work, mode);

        Assert.Equal("prelaunch", await vm.StatusAsync());
        Assert.Empty(vm.DrainEvents());
        await AssertRestoresImageAsync(connection, result, vm, work.File("restore"));
    }

    private static async Task<VmBackupResult> BackupAsync(ProviderConnection connection, SystemVmProcess vm, TempDirectory work,
        VmBackupMode mode, TimeSpan? shutdownTimeout = null)
    {
        Directory.CreateDirectory(work.File("fleece"));
        Directory.CreateDirectory(work.File("run"));
        string jobId = Guid.NewGuid().ToString();
        await connection.Backup.JobInitAsync(new JobInitRequest { JobId = jobId });
        try
        {
            return await new VmBackupRunner(connection, NullLogger<VmBackupRunner>.Instance).BackupAsync(jobId, vm.Guest,
                new VmBackupOptions
                {
                    FleecingDirectory = work.File("fleece"), RuntimeDirectory = work.File("run"), StorageId = "test",
                    Mode = mode, ShutdownTimeout = shutdownTimeout ?? TimeSpan.FromMinutes(1),
                },
                CancellationToken.None);
        }
        finally
        {
            await connection.Backup.JobCleanupAsync(new JobCleanupRequest { JobId = jobId, Success = true });
        }
    }

    /// <summary>No guest OS writes, so the restored disk must equal the image as it is now.</summary>
    private static async Task AssertRestoresImageAsync(ProviderConnection connection, VmBackupResult backup, SystemVmProcess vm, string target)
    {
        var restored = await new VmRestoreRunner(connection, NullLogger<VmRestoreRunner>.Instance)
            .RestoreAsync(backup.ArchiveName, new VmRestoreOptions { TargetDirectory = target }, CancellationToken.None);
        var (exitCode, stdout, stderr) = await ChildProcess.RunAsync("qemu-img",
            ["compare", "-U", "-f", "qcow2", "-F", "raw", vm.ImagePath, restored.Disks["drive-virtio0"]]);
        Assert.True(exitCode == 0, stdout + stderr);
    }
}
