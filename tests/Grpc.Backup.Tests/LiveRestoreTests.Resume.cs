using System.Diagnostics;
using System.Globalization;
using System.Text.Json.Nodes;
using Grpc.Backup.Host;
using Grpc.Backup.Orchestrator;
using Grpc.Backup.Providers.Restic.Tests.Infrastructure;
using Grpc.Backup.Tests.Infrastructure;
using Microsoft.Extensions.Logging.Abstractions;

namespace Grpc.Backup.Tests;

/// <summary>A provider restarted mid-stream: the host claims its sources again and the restore resumes.</summary>
public sealed partial class LiveRestoreTests
{
    /// <summary>What the guest writes during the restore: one whole MiB, and 4 KiB inside a cluster not streamed yet.</summary>
    private const byte GuestByte = 0x5A;

    private const long GuestMebibyte = 5L << 20;

    private const long GuestPartial = (6L << 20) + 512;

    private const int GuestPartialLength = 4096;

    [Fact]
    public async Task A_provider_killed_mid_stream_and_restarted_has_its_sources_claimed_again_and_the_restore_completes_with_the_backup_and_the_guests_writes()
    {
        using var work = new TempDirectory();
        var clock = Stopwatch.StartNew();
        await using var provider = await ResticProviderProcess.StartAsync();
        await using var connection = await ProviderConnection.ConnectAsync(provider.Endpoint);
        string archive;
        IReadOnlyDictionary<string, string> instant;
        await using (var original = await DemoGuestProcess.StartAsync(work.File("guest"),
            "--disk", "drive-virtio0:qcow2:8", "--disk", "drive-virtio1:raw:8", "--write-interval-ms", "20"))
        {
            archive = (await VmBackupTests.BackupAsync(connection, original, work)).ArchiveName;
            instant = original.LastInstant();
        }
        // The oracle: a plain restore of the same archive (its own copy path), equal to the disks at the backup's instant.
        var plain = await new VmRestoreRunner(connection, NullLogger<VmRestoreRunner>.Instance)
            .RestoreAsync(archive, new VmRestoreOptions { TargetDirectory = work.File("plain") }, CancellationToken.None).WaitAsync(Bound);
        foreach (var (device, sha) in instant)
        {
            Assert.Equal(sha, Checksums.Sha256File(plain.Disks[device]));
        }
        output.WriteLine($"backup and plain restore: {clock.Elapsed.TotalSeconds:F1} s");

        string nbd = work.File("vm-nbd.sock");
        var log = new TimedLogger<LiveRestoreRunner>();
        ChildProcess? vm = null;
        try
        {
            // Slow (128 KiB/s a disk): the streams are early in their 8 MiB when the provider dies. restic passes a
            // connected socket to its nbdkit, which dies with it: only a new claim reaches the data again.
            await using LiveRestoreSession session = await new LiveRestoreRunner(connection, log).StartAsync(archive,
                new LiveRestoreOptions { TargetDirectory = work.File("live"), BandwidthLimit = 256 * 1024, ReconnectDelay = TimeSpan.FromSeconds(1) },
                async (guest, _) =>
                {
                    // The guest's disks, writable through the VM's own NBD server (the guest's view: qcow2 over the backing).
                    (vm, string qmp) = await StartStorageDaemonAsync(guest, work, ["--nbd-server", $"addr.type=unix,addr.path={nbd}",
                        .. guest.Disks.SelectMany(d => new[] { "--export", $"type=nbd,id=e-{d.NodeName},node-name={d.NodeName},name={d.NodeName},writable=on" })]);
                    return qmp;
                }, CancellationToken.None).WaitAsync(Bound);

            // The guest writes where nothing was streamed yet: a whole MiB, and 4 KiB whose cluster's rest qcow2 reads from
            // the provider's export first.
            foreach (LiveRestoreDisk disk in session.Disks)
            {
                await ChildProcess.RunCheckedAsync("qemu-io", ["-f", "raw", $"nbd+unix:///{disk.NodeName}?socket={nbd}",
                    "-c", $"write -P {GuestByte} {GuestMebibyte} {1 << 20}", "-c", $"write -P {GuestByte} {GuestPartial} {GuestPartialLength}"]);
            }
            await WaitForProgressAsync(session, p => p.BytesDone > 0, vm!, "the streams did not begin");

            // Killed (nbdkit with it): the streams' reads fail after the reconnect delay and the jobs pause (on-error=stop).
            await provider.Process.DisposeAsync();
            await WaitForProgressAsync(session, p => p.Paused, vm!, "the streams did not pause");
            LiveRestoreProgress atKill = await session.GetProgressAsync();
            Assert.True(atKill.DisksDone == 0 && atKill.BytesDone < atKill.BytesTotal, atKill.ToString());

            // Restarted on the same socket, as systemd's socket activation would: nothing from the first provider is left.
            var restarted = Stopwatch.StartNew();
            await provider.KillAndRestartAsync();
            await session.SetBandwidthLimitAsync(0);
            try
            {
                await session.Completion.WaitAsync(TimeSpan.FromMinutes(3));
            }
            catch (TimeoutException)
            {
                output.WriteLine(string.Join('\n', log.Lines.Select(l => $"{l.At:HH:mm:ss.fff} {l.Line}")));
                output.WriteLine((await session.GetProgressAsync()).ToString());
                output.WriteLine(vm!.StandardError);
                output.WriteLine(provider.Process.StandardError);
                throw;
            }
            output.WriteLine($"restart to independence: {restarted.Elapsed.TotalSeconds:F1} s; streamed before the kill: {atKill.BytesDone} of {atKill.BytesTotal}");
            LiveRestoreProgress done = await session.GetProgressAsync();
            Assert.True(done.DisksDone == 2 && done.BytesDone == done.BytesTotal, done.ToString());

            // Shut down cleanly (metadata flushed): each qcow2 stands alone and holds the backup's instant plus the guest's writes.
            vm!.Terminate();
            await vm.WaitForExitAsync(Bound);
            foreach (LiveRestoreDisk disk in session.Disks)
            {
                var (exit, stdout, stderr) = await ChildProcess.RunAsync("qemu-img", ["info", "--output=json", disk.ImagePath]);
                Assert.True(exit == 0, stderr);
                Assert.Null(JsonNode.Parse(stdout)!["backing-filename"]);
                string live = work.File(disk.DeviceName + ".live.raw");
                await ChildProcess.RunCheckedAsync("qemu-img", ["convert", "-f", "qcow2", "-O", "raw", disk.ImagePath, live]);
                string expected = work.File(disk.DeviceName + ".expected.raw");
                File.Copy(plain.Disks[disk.DeviceName], expected);
                using (var file = File.OpenHandle(expected, FileMode.Open, FileAccess.Write))
                {
                    RandomAccess.Write(file, Enumerable.Repeat(GuestByte, 1 << 20).ToArray(), GuestMebibyte);
                    RandomAccess.Write(file, Enumerable.Repeat(GuestByte, GuestPartialLength).ToArray(), GuestPartial);
                }
                Assert.Equal(Checksums.Sha256File(expected), Checksums.Sha256File(live));
            }
            output.WriteLine($"whole test: {clock.Elapsed.TotalSeconds:F1} s");
        }
        finally
        {
            if (vm is not null)
            {
                await vm.DisposeAsync();
            }
        }
    }

    private static async Task WaitForProgressAsync(LiveRestoreSession session, Func<LiveRestoreProgress, bool> condition, ChildProcess vm, string failure)
    {
        var deadline = DateTime.UtcNow + Bound;
        LiveRestoreProgress progress;
        while (!condition(progress = await session.GetProgressAsync()))
        {
            Assert.True(DateTime.UtcNow < deadline && !vm.HasExited, $"{failure}: {progress}; {vm.StandardError}");
            await Task.Delay(100);
        }
    }

    /// <summary>The VM for tests without a guest: qemu-storage-daemon on the disks' blockdev trees (QEMU's own NBD client and block layer).</summary>
    private static async Task<(ChildProcess Vm, string QmpSocket)> StartStorageDaemonAsync(LiveRestoreGuest guest, TempDirectory work, IEnumerable<string> extra)
    {
        string qmp = work.File("qmp.sock");
        var vm = ChildProcess.Start("qemu-storage-daemon", [.. guest.Disks.SelectMany(d => new[] { "--blockdev", d.BlockdevJson }),
            "--chardev", $"socket,id=m,path={qmp},server=on,wait=off", "--monitor", "chardev=m", .. extra]);
        try
        {
            await vm.WaitForFileAsync(qmp, TimeSpan.FromSeconds(60));
            return (vm, qmp);
        }
        catch
        {
            await vm.DisposeAsync();
            throw;
        }
    }
}
