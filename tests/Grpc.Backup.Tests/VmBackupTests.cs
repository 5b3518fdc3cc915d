using Google.Protobuf.WellKnownTypes;
using Grpc.Backup.Host;
using Grpc.Backup.Orchestrator;
using Grpc.Backup.Protocol.V1;
using Grpc.Backup.Tests.Infrastructure;
using Microsoft.Extensions.Logging.Abstractions;

namespace Grpc.Backup.Tests;

/// <summary>
/// End to end against real QEMU and the real directory provider: a guest that never stops writing is backed up (full,
/// then incrementals) and every restore equals the disks' content at the backup's instant.
/// </summary>
public sealed class VmBackupTests
{
    [Theory]
    [InlineData(VmBackupMechanism.Nbd)]
    [InlineData(VmBackupMechanism.FileHandle)]
    public async Task Full_and_two_incrementals_of_a_writing_guest_restore_to_their_instants(VmBackupMechanism mechanism)
    {
        using var work = new TempDirectory();
        await using var guest = await DemoGuestProcess.StartAsync(work.File("guest"));
        await using var provider = await DirectoryProviderProcess.StartAsync(mechanism);
        await using var connection = await ProviderConnection.ConnectAsync(provider.Endpoint);
        var backups = new List<(VmBackupResult Result, IReadOnlyDictionary<string, string> Expected)>();

        for (int i = 0; i < 3; i++)
        {
            long started = System.Diagnostics.Stopwatch.GetTimestamp();
            VmBackupResult result = await BackupAsync(connection, guest, work);
            TimeSpan elapsed = System.Diagnostics.Stopwatch.GetElapsedTime(started);
            backups.Add((result, guest.LastInstant()));
            // Every phase of a running guest's backup is recorded once, in order, and together they fit in its time.
            Assert.Equal(["init", "quiesce", "setup", "copy", "teardown", "commit"], result.Phases.Phases.Select(p => p.Key));
            Assert.True(result.Phases["copy"] > TimeSpan.Zero && result.Phases["quiesce"] > TimeSpan.Zero, result.Phases.ToString());
            Assert.True(result.Phases.Phases.Aggregate(TimeSpan.Zero, (sum, p) => sum + p.Value) <= elapsed, $"{result.Phases} in {elapsed}");
            await Task.Delay(300); // the guest keeps writing between backups
        }

        Assert.All(backups[0].Result.Volumes, v => Assert.Equal(BitmapMode.New, v.BitmapMode));
        Assert.All(backups[1].Result.Volumes, v => Assert.Equal(BitmapMode.Reuse, v.BitmapMode));
        Assert.All(backups[2].Result.Volumes, v => Assert.Equal(BitmapMode.Reuse, v.BitmapMode));
        Assert.Equal(Consistency.Application, backups[0].Result.Consistency);
        // An incremental reads only what changed, not the whole 128 MiB of disks. (How much changed depends on how long
        // the backups took while the guest kept writing, so no tighter bound holds on a loaded machine.)
        long incrementalRead = backups[2].Result.Volumes.Sum(v => (long)v.BytesRead);
        Assert.True(incrementalRead < 128L * 1024 * 1024, $"the incremental read {incrementalRead} bytes: the whole disks");
        for (int i = 0; i < backups.Count; i++)
        {
            string target = work.File($"restore{i}");
            var restored = await new VmRestoreRunner(connection, NullLogger<VmRestoreRunner>.Instance)
                .RestoreAsync(backups[i].Result.ArchiveName, new VmRestoreOptions { TargetDirectory = target }, CancellationToken.None);
            Assert.Equal(["init", "copy", "convert"], restored.Phases.Phases.Select(p => p.Key));
            foreach (var (device, expected) in backups[i].Expected)
            {
                Assert.True(expected == Checksums.Sha256File(restored.Disks[device]), $"backup {i}, {device}: restored data differs from the instant");
            }
            Assert.Equal(guest.Guest.RawConfig.ToArray(), restored.GuestConfig.ToArray());
        }
        Assert.Empty(Directory.GetFiles(work.File("fleece")));
        AssertNoHostLeftovers(work);
    }

    /// <summary>
    /// Data is data: a guest disk whose first bytes are a qcow2 header (a nested image, a disk being installed) backs up
    /// and restores byte-exact, full and incremental. The host used to probe the restore source and refuse it.
    /// </summary>
    [Fact]
    public async Task A_guest_disk_that_begins_with_a_qcow2_header_restores_byte_exact_full_and_incremental()
    {
        using var work = new TempDirectory();
        await using var guest = await DemoGuestProcess.StartAsync(work.File("guest"), "--no-writer");
        await using var provider = await DirectoryProviderProcess.StartAsync(VmBackupMechanism.Nbd);
        await using var connection = await ProviderConnection.ConnectAsync(provider.Endpoint);
        string header = work.File("nested.qcow2");
        var (exitCode, _, stderr) = await ChildProcess.RunAsync("qemu-img", ["create", "-q", "-f", "qcow2", "-b", "/etc/hostname", "-F", "raw", header, "1M"]);
        Assert.True(exitCode == 0, stderr);
        byte[] nested = await File.ReadAllBytesAsync(header);
        foreach (string device in guest.Guest.Disks.Select(d => d.DeviceName))
        {
            await WriteIntoGuestAsync(guest, device, 0, nested);
        }

        VmBackupResult full = await BackupAsync(connection, guest, work);
        IReadOnlyDictionary<string, string> fullInstant = guest.LastInstant();
        foreach (string device in guest.Guest.Disks.Select(d => d.DeviceName))
        {
            await WriteIntoGuestAsync(guest, device, 3 << 20, System.Text.Encoding.ASCII.GetBytes("changed after the full " + Guid.NewGuid()));
        }
        VmBackupResult incremental = await BackupAsync(connection, guest, work);

        Assert.All(incremental.Volumes, v => Assert.Equal(BitmapMode.Reuse, v.BitmapMode));
        await AssertRestoresToAsync(connection, full, fullInstant, work.File("restore-full"));
        await AssertRestoresToAsync(connection, incremental, guest.LastInstant(), work.File("restore-incremental"));
        Assert.Equal(nested, (await File.ReadAllBytesAsync(Directory.GetFiles(work.File("restore-full"), "*.raw")[0]))[..nested.Length]);
    }

    private static async Task WriteIntoGuestAsync(DemoGuestProcess guest, string device, long offset, byte[] data)
    {
        // The guest's own view of its disk (qemu-storage-daemon's FUSE export): a write here is a guest write.
        using var file = File.OpenHandle(Path.Combine(guest.Directory, "guest", device), FileMode.Open, FileAccess.Write);
        await RandomAccess.WriteAsync(file, data, offset);
        RandomAccess.FlushToDisk(file);
    }

    [Theory]
    [InlineData(VmBackupMechanism.Nbd)]
    [InlineData(VmBackupMechanism.FileHandle)]
    public async Task A_provider_killed_mid_backup_leaves_nothing_behind_and_the_next_incremental_is_exact(VmBackupMechanism mechanism)
    {
        using var work = new TempDirectory();
        await using var guest = await DemoGuestProcess.StartAsync(work.File("guest"));
        await using var provider = await DirectoryProviderProcess.StartAsync(mechanism);
        await using (var first = await ProviderConnection.ConnectAsync(provider.Endpoint))
        {
            await BackupAsync(first, guest, work);
            // The job's limit (enforced by the host) keeps this backup running when the provider is killed.
            // Killed once it reports copied bytes: mid-copy.
            var copying = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            Task<VmBackupResult> slow = BackupAsync(first, guest, work, bandwidthLimit: 1024 * 1024,
                new SynchronousProgress(p => { if (p.BytesDone > 0) { copying.TrySetResult(); } }));
            await Task.WhenAny(copying.Task, slow);
            Assert.True(copying.Task.IsCompleted, "the backup ended before it copied anything");
            await provider.KillAndRestartAsync();
            await Assert.ThrowsAnyAsync<Exception>(() => slow);
        }

        Assert.Empty(Directory.GetFiles(work.File("fleece")));
        Assert.False(guest.Process.HasExited, "the guest kept running");
        await using (var qmp = await Qemu.QmpClient.ConnectAsync(guest.Guest.QmpSocket))
        {
            // Only the guest's own FUSE exports remain; every snapshot export (NBD and FUSE) is gone.
            var exports = (await qmp.ExecuteAsync("query-block-exports"))!.AsArray();
            Assert.Equal(["guest0", "guest1"], exports.Select(e => (string)e!["id"]!).Order(StringComparer.Ordinal));
            var nodes = (await qmp.ExecuteAsync("query-named-block-nodes", new System.Text.Json.Nodes.JsonObject { ["flat"] = true }))!
                .AsArray().Select(n => (string)n!["node-name"]!).Order(StringComparer.Ordinal);
            Assert.Equal(["file0", "file1", "fmt0", "fmt1", "top0", "top1"], nodes);
            // No throttle group of a backup survives it either.
            var groups = (await qmp.ExecuteAsync("qom-list", new System.Text.Json.Nodes.JsonObject { ["path"] = "/objects" }))!.AsArray()
                .Select(o => (string)o!["name"]!).Where(n => n.StartsWith("gb", StringComparison.Ordinal));
            Assert.Empty(groups);
        }
        AssertNoHostLeftovers(work);
        await using var connection = await ProviderConnection.ConnectAsync(provider.Endpoint);
        VmBackupResult next = await BackupAsync(connection, guest, work);
        Assert.All(next.Volumes, v => Assert.Equal(BitmapMode.Reuse, v.BitmapMode));
        await AssertRestoresToAsync(connection, next, guest.LastInstant(), work.File("restore"));
    }

    [Fact]
    public async Task A_disk_excluded_from_backup_never_reaches_the_provider_and_is_recreated_empty_or_left_out()
    {
        using var work = new TempDirectory();
        await using var guest = await DemoGuestProcess.StartAsync(work.File("guest"),
            "--disk", "drive-virtio0:qcow2:32", "--disk", "drive-virtio1:raw:32", "--disk", "drive-scratch:raw:16", "--no-backup", "drive-scratch");
        await using var provider = await DirectoryProviderProcess.StartAsync();
        await using var connection = await ProviderConnection.ConnectAsync(provider.Endpoint);

        VmBackupResult backup = await BackupAsync(connection, guest, work);
        IReadOnlyDictionary<string, string> instant = guest.LastInstant();

        Assert.Equal(["drive-virtio0", "drive-virtio1"], backup.Volumes.Select(v => v.DeviceName).Order(StringComparer.Ordinal));
        Assert.DoesNotContain(Directory.EnumerateFiles(provider.RepositoryPath, "*", SearchOption.AllDirectories),
            f => f.Contains("drive-scratch", StringComparison.Ordinal));
        var recreated = await new VmRestoreRunner(connection, NullLogger<VmRestoreRunner>.Instance)
            .RestoreAsync(backup.ArchiveName, new VmRestoreOptions { TargetDirectory = work.File("recreated") }, CancellationToken.None);
        var leftOut = await new VmRestoreRunner(connection, NullLogger<VmRestoreRunner>.Instance).RestoreAsync(backup.ArchiveName,
            new VmRestoreOptions { TargetDirectory = work.File("left-out"), ExcludedDisks = ExcludedDiskRestore.LeaveOut }, CancellationToken.None);

        foreach (string device in (string[])["drive-virtio0", "drive-virtio1"])
        {
            Assert.Equal(instant[device], Checksums.Sha256File(recreated.Disks[device]));
            Assert.Equal(instant[device], Checksums.Sha256File(leftOut.Disks[device]));
        }
        // The excluded disk holds guest data, but none of it was backed up: it comes back empty, at its recorded size.
        Assert.NotEqual(Checksums.Sha256File(recreated.Disks["drive-scratch"]), instant["drive-scratch"]);
        Assert.Equal(16L << 20, new FileInfo(recreated.Disks["drive-scratch"]).Length);
        Assert.Equal(Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(new byte[16 << 20])),
            Checksums.Sha256File(recreated.Disks["drive-scratch"]));
        Assert.False(leftOut.Disks.ContainsKey("drive-scratch"));
    }

    [Fact]
    public async Task The_qcow2_bitmap_survives_a_guest_restart_and_a_crash_forces_a_full_backup()
    {
        using var work = new TempDirectory();
        await using var provider = await DirectoryProviderProcess.StartAsync();
        await using var connection = await ProviderConnection.ConnectAsync(provider.Endpoint);
        await using (var guest = await DemoGuestProcess.StartAsync(work.File("guest")))
        {
            await BackupAsync(connection, guest, work);
            await guest.StopAsync();
        }

        // While the VM is stopped, its images are exported read-only with their persistent bitmaps.
        string guestDirectory = work.File("guest");
        var stoppedGuest = Orchestrator.Inventory.GuestInventory.Load(Path.Combine(guestDirectory, "inventory")).Vms["100"];
        VmBackupResult stopped = await BackupAsync(connection, stoppedGuest, work);
        Assert.Equal(Consistency.Stopped, stopped.Consistency);
        Assert.Equal(BitmapMode.Reuse, stopped.Volumes.Single(v => v.DeviceName == "drive-virtio0").BitmapMode);
        var restoredStopped = await new VmRestoreRunner(connection, NullLogger<VmRestoreRunner>.Instance)
            .RestoreAsync(stopped.ArchiveName, new VmRestoreOptions { TargetDirectory = work.File("restore0") }, CancellationToken.None);
        foreach (var disk in stoppedGuest.Disks)
        {
            var (exitCode, stdout, _) = await ChildProcess.RunAsync("qemu-img",
                ["compare", "-f", disk.Format == Orchestrator.Inventory.DiskFormat.Qcow2 ? "qcow2" : "raw", "-F", "raw", disk.ImagePath, restoredStopped.Disks[disk.DeviceName]]);
            Assert.True(exitCode == 0, stdout);
        }

        // A clean restart: the qcow2 disk's persistent bitmap is still valid; the raw disk's in-memory one is gone.
        await using (var guest = await DemoGuestProcess.StartAsync(work.File("guest")))
        {
            VmBackupResult afterRestart = await BackupAsync(connection, guest, work);
            Assert.Equal(BitmapMode.Reuse, afterRestart.Volumes.Single(v => v.DeviceName == "drive-virtio0").BitmapMode);
            Assert.Equal(BitmapMode.New, afterRestart.Volumes.Single(v => v.DeviceName == "drive-virtio1").BitmapMode);
            await AssertRestoresToAsync(connection, afterRestart, guest.LastInstant(), work.File("restore1"));
            // A crash: kill -9 of QEMU leaves the qcow2 bitmap marked in-use, so it cannot be trusted.
            int qsd = int.Parse(File.ReadAllText(Path.Combine(guest.Directory, "qsd.pid")).Trim(), System.Globalization.CultureInfo.InvariantCulture);
            System.Diagnostics.Process.GetProcessById(qsd).Kill();
            await guest.Process.WaitForExitAsync(TimeSpan.FromSeconds(30));
        }
        await using (var guest = await DemoGuestProcess.StartAsync(work.File("guest")))
        {
            VmBackupResult afterCrash = await BackupAsync(connection, guest, work);
            Assert.All(afterCrash.Volumes, v => Assert.Equal(BitmapMode.New, v.BitmapMode));
            await AssertRestoresToAsync(connection, afterCrash, guest.LastInstant(), work.File("restore2"));
        }
    }

    /// <summary>No FUSE mount, mountpoint or socket of a backup is left in the host's runtime directory.</summary>
    internal static void AssertNoHostLeftovers(TempDirectory work)
    {
        Assert.DoesNotContain(work.File("run"), File.ReadAllText("/proc/self/mountinfo"), StringComparison.Ordinal);
        Assert.DoesNotContain(Directory.GetFileSystemEntries(work.File("run")), e => !e.EndsWith(".log", StringComparison.Ordinal));
    }

    internal static async Task AssertRestoresToAsync(ProviderConnection connection, VmBackupResult backup,
        IReadOnlyDictionary<string, string> expected, string target)
    {
        var restored = await new VmRestoreRunner(connection, NullLogger<VmRestoreRunner>.Instance)
            .RestoreAsync(backup.ArchiveName, new VmRestoreOptions { TargetDirectory = target }, CancellationToken.None);
        foreach (var (device, sha) in expected)
        {
            Assert.Equal(sha, Checksums.Sha256File(restored.Disks[device]));
        }
    }

    private static async Task WaitUntilAsync(Func<bool> condition, TimeSpan timeout)
    {
        var deadline = DateTime.UtcNow + timeout;
        while (!condition())
        {
            Assert.True(DateTime.UtcNow < deadline, "timed out waiting");
            await Task.Delay(20);
        }
    }

    internal static Task<VmBackupResult> BackupAsync(ProviderConnection connection, DemoGuestProcess guest, TempDirectory work,
        ulong bandwidthLimit = 0, IProgress<Progress>? progress = null, Microsoft.Extensions.Logging.ILogger<VmBackupRunner>? logger = null) =>
        BackupAsync(connection, guest.Guest, work, bandwidthLimit, progress, logger);

    internal static async Task<VmBackupResult> BackupAsync(ProviderConnection connection, Orchestrator.Inventory.VmGuest guest,
        TempDirectory work, ulong bandwidthLimit = 0, IProgress<Progress>? progress = null, Microsoft.Extensions.Logging.ILogger<VmBackupRunner>? logger = null,
        VmBackupMode mode = VmBackupMode.Snapshot)
    {
        Directory.CreateDirectory(work.File("fleece"));
        Directory.CreateDirectory(work.File("run"));
        string jobId = Guid.NewGuid().ToString();
        await connection.Backup.JobInitAsync(new JobInitRequest { JobId = jobId, StartTime = Timestamp.FromDateTime(DateTime.UtcNow) });
        try
        {
            return await new VmBackupRunner(connection, logger ?? NullLogger<VmBackupRunner>.Instance).BackupAsync(jobId, guest,
                new VmBackupOptions
                {
                    FleecingDirectory = work.File("fleece"), RuntimeDirectory = work.File("run"), StorageId = "test",
                    // The per-guest lock every real host takes (the service, the CLI's direct mode).
                    LockDirectory = work.File("locks"),
                    BandwidthLimit = bandwidthLimit,
                    Progress = progress,
                    Mode = mode,
                    // The test agent hashes every disk while frozen (to record the instant); on a loaded machine that
                    // takes longer than a real agent's freeze, and a fallback would make the recorded instant stale.
                    AgentTimeout = TimeSpan.FromSeconds(60),
                },
                CancellationToken.None);
        }
        finally
        {
            await connection.Backup.JobCleanupAsync(new JobCleanupRequest { JobId = jobId, Success = true });
        }
    }
}
