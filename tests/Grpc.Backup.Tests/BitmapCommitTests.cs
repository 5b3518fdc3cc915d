using Grpc.Backup.Host;
using Grpc.Backup.Orchestrator;
using Grpc.Backup.Protocol.V1;
using Grpc.Backup.Tests.Infrastructure;

namespace Grpc.Backup.Tests;

/// <summary>
/// Incrementals advance only after the provider committed (issue 15): a provider restarted between the end of the
/// backup's data and BackupCleanup(success=true) answers NOT_FOUND (it lost the uncommitted backup), and the next
/// incremental, on top of the last committed backup, still restores byte-exact to its instant: it includes the writes
/// made before the failed backup's instant. The restart runs at the step the host logs, while the host waits there.
/// </summary>
public sealed class BitmapCommitTests
{
    private const string BeforeCleanup = "BackupCleanup(success=true) decides";

    [Fact]
    public async Task A_running_guests_backup_whose_cleanup_fails_does_not_move_the_base()
    {
        using var work = new TempDirectory();
        await using var guest = await DemoGuestProcess.StartAsync(work.File("guest"));
        await using var provider = await DirectoryProviderProcess.StartAsync();
        await using (var connection = await ProviderConnection.ConnectAsync(provider.Endpoint))
        {
            await VmBackupTests.BackupAsync(connection, guest, work);
            IReadOnlyDictionary<string, string> fullInstant = guest.LastInstant();

            var restart = new StepLogger<VmBackupRunner>(BeforeCleanup, () => provider.KillAndRestartAsync().GetAwaiter().GetResult());
            await Assert.ThrowsAnyAsync<Exception>(() => VmBackupTests.BackupAsync(connection, guest, work, logger: restart));
            // The guest wrote between the full backup and the failed one's instant: those writes are what must not be lost.
            Assert.NotEqual(fullInstant, guest.LastInstant());
        }

        Assert.Empty(Directory.GetFiles(work.File("fleece")));
        await using var fresh = await ProviderConnection.ConnectAsync(provider.Endpoint);
        VmBackupResult next = await VmBackupTests.BackupAsync(fresh, guest, work);
        Assert.All(next.Volumes, v => Assert.Equal(BitmapMode.Reuse, v.BitmapMode));
        await VmBackupTests.AssertRestoresToAsync(fresh, next, guest.LastInstant(), work.File("restore"));
    }

    [Fact]
    public async Task A_stopped_guests_backup_whose_cleanup_fails_keeps_its_qcow2_bitmap()
    {
        using var work = new TempDirectory();
        await using var provider = await DirectoryProviderProcess.StartAsync();
        IReadOnlyDictionary<string, string> fullInstant;
        IReadOnlyDictionary<string, string> stoppedContent;
        await using (var connection = await ProviderConnection.ConnectAsync(provider.Endpoint))
        {
            await using (var guest = await DemoGuestProcess.StartAsync(work.File("guest")))
            {
                await VmBackupTests.BackupAsync(connection, guest, work);
                fullInstant = guest.LastInstant();
                await guest.StopAsync();
            }

            var stopped = Orchestrator.Inventory.GuestInventory.Load(Path.Combine(work.File("guest"), "inventory")).Vms["100"];
            stoppedContent = await ImageContentAsync(stopped);
            var restart = new StepLogger<VmBackupRunner>(BeforeCleanup, () => provider.KillAndRestartAsync().GetAwaiter().GetResult());
            await Assert.ThrowsAnyAsync<Exception>(() => VmBackupTests.BackupAsync(connection, stopped, work, logger: restart));
            Assert.NotEqual(fullInstant["drive-virtio0"], stoppedContent["drive-virtio0"]);
        }

        // Restarted: the qcow2 disk's persistent bitmap still holds every write since the full backup.
        await using (var guest = await DemoGuestProcess.StartAsync(work.File("guest")))
        {
            await using var fresh = await ProviderConnection.ConnectAsync(provider.Endpoint);
            VmBackupResult next = await VmBackupTests.BackupAsync(fresh, guest, work);
            Assert.Equal(BitmapMode.Reuse, next.Volumes.Single(v => v.DeviceName == "drive-virtio0").BitmapMode);
            await VmBackupTests.AssertRestoresToAsync(fresh, next, guest.LastInstant(), work.File("restore"));
        }
    }

    /// <summary>The sha256 of each disk's guest-visible content (qcow2 converted to raw).</summary>
    private static async Task<IReadOnlyDictionary<string, string>> ImageContentAsync(Orchestrator.Inventory.VmGuest guest)
    {
        var content = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var disk in guest.Disks)
        {
            string raw = disk.ImagePath + ".content.raw";
            var (exit, _, stderr) = await ChildProcess.RunAsync("qemu-img",
                ["convert", "-U", "-f", disk.Format == Orchestrator.Inventory.DiskFormat.Qcow2 ? "qcow2" : "raw", "-O", "raw", disk.ImagePath, raw]);
            Assert.True(exit == 0, stderr);
            content[disk.DeviceName] = Checksums.Sha256File(raw);
            File.Delete(raw);
        }
        return content;
    }
}
