using Google.Protobuf.WellKnownTypes;
using Grpc.Backup.Host;
using Grpc.Backup.Orchestrator;
using Grpc.Backup.Protocol.V1;
using Grpc.Backup.Tests.Infrastructure;
using Microsoft.Extensions.Logging.Abstractions;

namespace Grpc.Backup.Tests;

/// <summary>
/// Nothing waits forever on a provider (issue 15): a provider that goes silent in the middle of BackupVm is cancelled
/// after the inactivity timeout; the host tears down (no export, node or fleecing file left, QEMU up), tells the
/// provider BackupCleanup(success=false), and the guest's next backup runs and restores byte-exact.
/// </summary>
public sealed class ProviderWatchdogTests
{
    [Fact]
    public async Task A_provider_silent_mid_stream_is_cancelled_and_the_guest_is_left_clean()
    {
        using var work = new TempDirectory();
        await using var guest = await DemoGuestProcess.StartAsync(work.File("guest"));
        await using var silent = await InProcessProvider.StartAsync(identity => identity.Info.Capabilities.VmBackupMechanisms.Add(VmBackupMechanism.Nbd));
        silent.Backup.BackupVmGoesSilent = true;
        Directory.CreateDirectory(work.File("fleece"));
        Directory.CreateDirectory(work.File("run"));
        var failure = await BackupFailsAsync(silent, guest, new VmBackupOptions
        {
            FleecingDirectory = work.File("fleece"),
            RuntimeDirectory = work.File("run"),
            StorageId = "test",
            AgentTimeout = TimeSpan.FromSeconds(60),
            ProviderInactivityTimeout = TimeSpan.FromSeconds(2),
        });
        Assert.Contains("no progress for 2 s", failure.Message, StringComparison.Ordinal);

        Assert.True(silent.Backup.BackupCleanupCalls >= 1);
        Assert.False(guest.Process.HasExited, "the guest kept running");
        Assert.Empty(Directory.GetFiles(work.File("fleece")));
        await using (var qmp = await Qemu.QmpClient.ConnectAsync(guest.Guest.QmpSocket))
        {
            var exports = (await qmp.ExecuteAsync("query-block-exports"))!.AsArray();
            Assert.Equal(["guest0", "guest1"], exports.Select(e => (string)e!["id"]!).Order(StringComparer.Ordinal));
            var nodes = (await qmp.ExecuteAsync("query-named-block-nodes", new System.Text.Json.Nodes.JsonObject { ["flat"] = true }))!
                .AsArray().Select(n => (string)n!["node-name"]!).Order(StringComparer.Ordinal);
            Assert.Equal(["file0", "file1", "fmt0", "fmt1", "top0", "top1"], nodes);
        }

        // The host moved on: the guest's next backup, to a working provider, restores to its instant.
        await using var provider = await DirectoryProviderProcess.StartAsync();
        await using var working = await ProviderConnection.ConnectAsync(provider.Endpoint);
        VmBackupResult next = await VmBackupTests.BackupAsync(working, guest, work);
        await VmBackupTests.AssertRestoresToAsync(working, next, guest.LastInstant(), work.File("restore"));
    }

    [Theory]
    [InlineData("repeats")]
    [InlineData("unknown-device")]
    public async Task Progress_that_does_not_advance_or_names_another_device_cannot_keep_a_backup_alive(string attack)
    {
        using var work = new TempDirectory();
        await using var guest = await DemoGuestProcess.StartAsync(work.File("guest"));
        await using var hostile = await InProcessProvider.StartAsync(identity => identity.Info.Capabilities.VmBackupMechanisms.Add(VmBackupMechanism.Nbd));
        hostile.Backup.BackupVmGoesSilent = true;
        hostile.Backup.BackupVmRepeatsProgress = true;
        if (attack == "unknown-device")
        {
            hostile.Backup.BackupVmProgressDevice = "drive-\u001b[31mnot-requested";
        }
        Directory.CreateDirectory(work.File("fleece"));
        Directory.CreateDirectory(work.File("run"));
        var failure = await BackupFailsAsync(hostile, guest, new VmBackupOptions
        {
            FleecingDirectory = work.File("fleece"),
            RuntimeDirectory = work.File("run"),
            StorageId = "test",
            AgentTimeout = TimeSpan.FromSeconds(60),
            ProviderInactivityTimeout = TimeSpan.FromSeconds(2),
        });
        Assert.Contains(attack == "repeats" ? "no progress for 2 s" : "progress for unknown volume", failure.Message, StringComparison.Ordinal);
        Assert.DoesNotContain('\u001b', failure.Message);

        Assert.True(hostile.Backup.BackupCleanupCalls >= 1);
        Assert.False(guest.Process.HasExited, "the guest kept running");
        Assert.Empty(Directory.GetFiles(work.File("fleece")));
    }

    [Fact]
    public async Task A_fleecing_filesystem_about_to_fill_aborts_the_backup_and_the_guest_never_sees_ENOSPC()
    {
        using var work = new TempDirectory();
        // A small fleecing filesystem of its own (tmpfs, 64 MiB); a reserve of 48 MiB leaves copy-before-write 16 MiB.
        string fleece = Directory.CreateDirectory(work.File("fleece-small")).FullName;
        Assert.Equal(0, (await ChildProcess.RunAsync("mount", ["-t", "tmpfs", "-o", "size=64m,mode=0700", "tmpfs", fleece])).ExitCode);
        try
        {
            await using var guest = await DemoGuestProcess.StartAsync(work.File("guest"));
            // A provider that takes the stream and never reads: the guest keeps writing, so the fleecing image grows.
            await using var stalled = await InProcessProvider.StartAsync(identity => identity.Info.Capabilities.VmBackupMechanisms.Add(VmBackupMechanism.Nbd));
            stalled.Backup.BackupVmGoesSilent = true;
            Directory.CreateDirectory(work.File("run"));
            var failure = await BackupFailsAsync(stalled, guest, new VmBackupOptions
            {
                FleecingDirectory = fleece,
                RuntimeDirectory = work.File("run"),
                StorageId = "test",
                AgentTimeout = TimeSpan.FromSeconds(60),
                ProviderInactivityTimeout = TimeSpan.Zero,
                FleecingReserve = 48UL << 20,
            });
            Assert.Contains("below the reserve", failure.Message, StringComparison.Ordinal);

            Assert.True(stalled.Backup.BackupCleanupCalls >= 1);
            Assert.False(guest.Process.HasExited, "the guest kept running: its writes never met ENOSPC");
            Assert.Empty(Directory.GetFiles(fleece));
            // The guest still writes after the abort: its next backup, to a working provider, restores to its instant.
            await using var provider = await DirectoryProviderProcess.StartAsync();
            await using var working = await ProviderConnection.ConnectAsync(provider.Endpoint);
            VmBackupResult next = await VmBackupTests.BackupAsync(working, guest, work);
            await VmBackupTests.AssertRestoresToAsync(working, next, guest.LastInstant(), work.File("restore"));
        }
        finally
        {
            await ChildProcess.RunAsync("umount", ["-l", fleece]);
        }
    }

    /// <summary>One backup through <paramref name="provider"/> that must fail; the job is opened first.</summary>
    private static async Task<BackupException> BackupFailsAsync(InProcessProvider provider, DemoGuestProcess guest, VmBackupOptions options)
    {
        await using var connection = await ProviderConnection.ConnectAsync(provider.Endpoint);
        string jobId = Guid.NewGuid().ToString();
        await connection.Backup.JobInitAsync(new JobInitRequest { JobId = jobId, StartTime = Timestamp.FromDateTime(DateTime.UtcNow) });
        return await Assert.ThrowsAsync<BackupException>(() => new VmBackupRunner(connection, NullLogger<VmBackupRunner>.Instance)
            .BackupAsync(jobId, guest.Guest, options, CancellationToken.None));
    }
}
