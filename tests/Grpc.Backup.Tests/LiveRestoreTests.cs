using System.Diagnostics;
using System.Text.Json.Nodes;
using Grpc.Backup.Host;
using Grpc.Backup.Orchestrator;
using Grpc.Backup.Providers.Borg.Tests.Infrastructure;
using Grpc.Backup.Providers.Restic.Tests.Infrastructure;
using Grpc.Backup.Tests.Infrastructure;
using Microsoft.Extensions.Logging.Abstractions;
using Xunit.Abstractions;

namespace Grpc.Backup.Tests;

/// <summary>
/// Live restore (<see cref="LiveRestoreRunner"/>) onto a real guest (<see cref="RealGuest"/>): it boots from the
/// backup's qcow2 overlays while block-stream fills them through the host's NBD guard.
/// </summary>
public sealed partial class LiveRestoreTests(ITestOutputHelper output)
{
    private static readonly TimeSpan Bound = TimeSpan.FromMinutes(8);

    /// <summary>Slow enough that the disks are still streaming when the guest's agent first answers.</summary>
    private const ulong SlowStream = 32 * 1024;

    [Fact]
    public async Task A_live_restore_through_the_directory_provider_boots_while_streaming_keeps_the_guests_writes_and_ends_independent()
    {
        using var work = new TempDirectory();
        await using var provider = await DirectoryProviderProcess.StartAsync();
        await using var connection = await ProviderConnection.ConnectAsync(provider.Endpoint);
        await AssertLiveRestoreAsync(connection, work, provider.KillAsync, comparePlainRestore: true);
    }

    [Fact]
    public async Task A_live_restore_through_the_borg_provider_boots_while_streaming_keeps_the_guests_writes_and_ends_independent()
    {
        using var work = new TempDirectory();
        await using var provider = await BorgProvider.StartAsync();
        await AssertLiveRestoreAsync(provider.Connection, work, () => StopAsync(provider.Process));
    }

    [Fact]
    public async Task A_live_restore_through_the_restic_provider_boots_while_streaming_keeps_the_guests_writes_and_ends_independent()
    {
        using var work = new TempDirectory();
        await using var provider = await ResticProviderProcess.StartAsync();
        await using var connection = await ProviderConnection.ConnectAsync(provider.Endpoint);
        await AssertLiveRestoreAsync(connection, work, () => StopAsync(provider.Process));
    }

    [Fact]
    public async Task A_provider_killed_mid_stream_pauses_the_guest_rather_than_failing_its_io_and_cancel_leaves_overlays_that_name_their_backing()
    {
        using var work = new TempDirectory();
        await using var provider = await ResticProviderProcess.StartAsync();
        await using var connection = await ProviderConnection.ConnectAsync(provider.Endpoint);
        string archive;
        await using (var original = await RealGuest.StartAsync(work.File("guest")))
        {
            archive = (await VmBackupTests.BackupAsync(connection, original.Guest, work)).ArchiveName;
        }
        // restic passes a connected socket: once its provider (and nbdkit) is gone, the guard cannot reach the export until a
        // provider is back (LiveRestoreTests.Resume.cs).
        var (session, guest) = await StartLiveAsync(connection, archive, work, reconnectDelay: TimeSpan.FromSeconds(2));
        try
        {
            await guest.WaitForAgentAsync(RealGuest.BootBound);
            Assert.Equal(0, (await session.GetProgressAsync()).DisksDone);
            await provider.Process.DisposeAsync();

            // The writer keeps allocating clusters whose rest qcow2 must read from the backing: those reads fail once the
            // reconnect delay is over, and the VM stops on them (werror/rerror=stop); the streams pause, they do not fail.
            var deadline = DateTime.UtcNow + TimeSpan.FromMinutes(4);
            string status;
            LiveRestoreProgress progress;
            while ((status = await guest.StatusAsync()) != "io-error" || !(progress = await session.GetProgressAsync()).Paused)
            {
                Assert.True(DateTime.UtcNow < deadline, $"the guest is {status} and the streams did not pause");
                await Task.Delay(250);
            }
            Assert.False(session.Completion.IsCompleted);
            Assert.DoesNotContain("I/O error", guest.Console(), StringComparison.Ordinal);

            await session.CancelAsync();
            Assert.Contains(await guest.StatusAsync(), new[] { "io-error", "paused" });
            foreach (LiveRestoreDisk disk in session.Disks)
            {
                var (exit, stdout, stderr) = await ChildProcess.RunAsync("qemu-img", ["info", "-U", "--output=json", disk.ImagePath]);
                Assert.True(exit == 0, stderr);
                Assert.StartsWith("json:{\"driver\":\"nbd\"", (string?)JsonNode.Parse(stdout)!["backing-filename"], StringComparison.Ordinal);
                string guardSocket = (string)JsonNode.Parse(disk.BlockdevJson)!["backing"]!["server"]!["path"]!;
                Assert.False(File.Exists(guardSocket), $"{guardSocket} is left");
            }
        }
        finally
        {
            await session.DisposeAsync();
            await guest.DisposeAsync();
        }
    }

    [Fact]
    public async Task An_export_of_the_wrong_size_is_refused_before_QEMU_sees_it()
    {
        using var work = new TempDirectory();
        await using var nbdkit = await ProviderNbdkit.StartAsync(work, "pattern", "size=16M");
        await using var provider = await InProcessProvider.StartAsync();
        provider.Restore.DeclaredSize = 32UL << 20;
        provider.Restore.SourceNbdUri = $"nbd+unix:///?socket={nbdkit.SocketPath}";
        await using var connection = await ProviderConnection.ConnectAsync(provider.Endpoint);
        bool started = false;

        var error = await Assert.ThrowsAsync<BackupException>(() => new LiveRestoreRunner(connection, NullLogger<LiveRestoreRunner>.Instance)
            .StartAsync("100/hostile", new LiveRestoreOptions { TargetDirectory = work.File("target"), ProviderRuntimeDirectory = nbdkit.RuntimeDirectory },
                (_, _) =>
                {
                    started = true;
                    return Task.FromResult("");
                }, CancellationToken.None).WaitAsync(Bound));

        Assert.Contains($"the provider's NBD export has {16 << 20} bytes; the archive says {32 << 20}", error.Message, StringComparison.Ordinal);
        Assert.False(started);
        Assert.False(Directory.Exists(work.File("target")));
        Assert.Equal(1, provider.Restore.VolumeCleanups);
        Assert.Equal(1, provider.Restore.VmCleanups);
    }

    /// <summary>The byte every malformed reply carries as its data: no restored disk may hold one.</summary>
    private const byte Poison = 0xEE;

    [Theory]
    [InlineData("a reply to a request never made")]
    [InlineData("a data chunk longer than the request")]
    [InlineData("a simple reply to a structured read")]
    public async Task A_hostile_export_sending_malformed_replies_is_refused_by_the_guard_QEMU_keeps_running_the_stream_pauses_and_no_byte_of_it_lands(string malformation)
    {
        using var work = new TempDirectory();
        const ulong size = 4 << 20;
        await using var hostile = new Nbd.Tests.FakeNbdServer(async s =>
        {
            await s.HandshakeAsync(size, contexts: [(1, "base:allocation")]);
            var r = await s.ReadRequestAsync();
            while (r.Type == Nbd.Tests.FakeNbdServer.CmdBlockStatus)
            {
                // Block status answered as the spec says (all data), so the stream goes on to READ.
                await s.SendChunkAsync(r.Cookie, Nbd.Tests.FakeNbdServer.ReplyBlockStatus, new Nbd.Tests.FakeNbdServer.Writer().U32(1).U32(r.Length).U32(0).ToArray());
                r = await s.ReadRequestAsync();
            }
            byte[] poison = Enumerable.Repeat(Poison, (int)r.Length).ToArray();
            await (malformation switch
            {
                "a reply to a request never made" => s.SendChunkAsync(r.Cookie ^ 0xFFFF_0000_0000, Nbd.Tests.FakeNbdServer.ReplyOffsetData,
                    new Nbd.Tests.FakeNbdServer.Writer().U64(r.Offset).Bytes(poison).ToArray()),
                "a data chunk longer than the request" => s.SendChunkAsync(r.Cookie, Nbd.Tests.FakeNbdServer.ReplyOffsetData,
                    new Nbd.Tests.FakeNbdServer.Writer().U64(r.Offset).Bytes([.. poison, .. poison]).ToArray()),
                _ => s.SendSimpleReplyAsync(r.Cookie, 0, poison),
            });
        });
        await using var provider = await InProcessProvider.StartAsync();
        provider.Restore.DeclaredSize = size;
        provider.Restore.SourceNbdUri = $"nbd+unix:///?socket={hostile.SocketPath}";
        await using var connection = await ProviderConnection.ConnectAsync(provider.Endpoint);
        ChildProcess? vm = null;
        try
        {
            await using LiveRestoreSession session = await new LiveRestoreRunner(connection, NullLogger<LiveRestoreRunner>.Instance).StartAsync("100/hostile",
                new LiveRestoreOptions
                {
                    TargetDirectory = work.File("target"), ReconnectDelay = TimeSpan.FromSeconds(1),
                    ProviderRuntimeDirectory = Path.GetDirectoryName(hostile.SocketPath),
                },
                async (guest, _) =>
                {
                    (vm, string qmp) = await StartStorageDaemonAsync(guest, work, []);
                    return qmp;
                }, CancellationToken.None).WaitAsync(Bound);

            // The guard's client refuses the reply and drops the connection; QEMU's reads fail after its reconnect delay
            // (the export never answers again) and the stream pauses (on-error=stop): it neither completes nor fails.
            var deadline = DateTime.UtcNow + Bound;
            while (!(await session.GetProgressAsync()).Paused)
            {
                Assert.True(DateTime.UtcNow < deadline && !vm!.HasExited, $"the stream did not pause: {vm!.StandardError}");
                await Task.Delay(100);
            }
            Assert.False(session.Completion.IsCompleted);
            await session.CancelAsync();
            Assert.False(vm!.HasExited, vm.StandardError);

            // What the qcow2 holds once QEMU shut down cleanly (its metadata flushed), read without its backing: not one
            // byte of the malformed reply.
            vm.Terminate();
            await vm.WaitForExitAsync(Bound);
            string image = session.Disks.Single().ImagePath;
            string raw = work.File("hostile.raw");
            await ChildProcess.RunCheckedAsync("qemu-img", ["convert", "-U", "-O", "raw",
                $"json:{{\"driver\":\"qcow2\",\"file\":{{\"driver\":\"file\",\"filename\":\"{image}\"}},\"backing\":null}}", raw]);
            Assert.DoesNotContain(Poison, await File.ReadAllBytesAsync(raw));
        }
        finally
        {
            if (vm is not null)
            {
                await vm.DisposeAsync();
            }
        }
    }

    private async Task AssertLiveRestoreAsync(ProviderConnection connection, TempDirectory work, Func<Task> stopProvider, bool comparePlainRestore = false)
    {
        string archive;
        IReadOnlyDictionary<string, string> backup;
        await using (var original = await RealGuest.StartAsync(work.File("guest")))
        {
            archive = (await VmBackupTests.BackupAsync(connection, original.Guest, work)).ArchiveName;
            backup = await original.Manifests.WaitForAsync("freeze-1", TimeSpan.FromSeconds(30));
        }
        if (comparePlainRestore)
        {
            await MeasurePlainRestoreAndBootAsync(connection, archive, work);
        }

        var clock = Stopwatch.StartNew();
        var (started, guest) = await StartLiveAsync(connection, archive, work);
        await using LiveRestoreSession session = started;
        try
        {
            await guest.WaitForAgentAsync(RealGuest.BootBound);
            TimeSpan toAgent = clock.Elapsed;
            LiveRestoreProgress atBoot = await session.GetProgressAsync();
            output.WriteLine($"command to the agent's first answer: {toAgent.TotalSeconds:F1} s; streamed {atBoot.BytesDone} of {atBoot.BytesTotal} bytes");
            Assert.True(atBoot.DisksDone == 0 && atBoot.BytesDone < atBoot.BytesTotal, $"the disks were no longer streaming: {atBoot}");

            // The guest reads every file (its freeze hook hashes them) while its disks still stream: the files the writer
            // never touches are the backup's, byte for byte.
            var whileStreaming = await FreezeAsync(guest, "freeze-1", whileFrozen: () => Task.CompletedTask);
            AssertSeedFilesOf(backup, whileStreaming);
            Assert.Equal(0, (await session.GetProgressAsync()).DisksDone);

            var unlimited = Stopwatch.StartNew();
            await session.SetBandwidthLimitAsync(0);
            await session.Completion.WaitAsync(Bound);
            output.WriteLine($"unlimited stream to independence: {unlimited.Elapsed.TotalSeconds:F1} s; command to independence: {clock.Elapsed.TotalSeconds:F1} s");
            LiveRestoreProgress done = await session.GetProgressAsync();
            Assert.True(done.BytesDone == done.BytesTotal && done.DisksDone == RealGuest.DiskCount, done.ToString());
            Assert.Equal("running", await guest.StatusAsync());
            Assert.DoesNotContain("STOP", guest.DrainEvents());

            // Frozen, the disks are consistent: copied out, each is a clean ext4 holding exactly what the guest saw, which is
            // the backup's seed files plus what the guest wrote since it booted.
            var copies = new Dictionary<string, string>();
            var final = await FreezeAsync(guest, "freeze-2", async () =>
            {
                foreach (LiveRestoreDisk disk in session.Disks)
                {
                    var (exit, stdout, stderr) = await ChildProcess.RunAsync("qemu-img", ["info", "-U", "--output=json", disk.ImagePath]);
                    Assert.True(exit == 0, stderr);
                    JsonNode info = JsonNode.Parse(stdout)!;
                    Assert.Null(info["backing-filename"]);
                    copies[disk.DeviceName] = work.File(disk.DeviceName + ".raw");
                    await ChildProcess.RunCheckedAsync("qemu-img", ["convert", "-U", "-f", "qcow2", "-O", "raw", disk.ImagePath, copies[disk.DeviceName]]);
                }
            });
            foreach (var (device, copy) in copies)
            {
                await Ext4Image.AssertMatchesAsync(copy, RealGuest.LabelOf(device), final, work.File("files-" + device));
            }
            AssertSeedFilesOf(backup, final);
            Assert.Contains(final, e => e.Key.Contains("/files/", StringComparison.Ordinal) && (!backup.TryGetValue(e.Key, out string? hash) || hash != e.Value));

            // Nothing depends on the provider any more: with it gone, the guest reads every file again and keeps running.
            await stopProvider();
            await FreezeAsync(guest, "freeze-3", whileFrozen: () => Task.CompletedTask);
            Assert.Equal("running", await guest.StatusAsync());
        }
        finally
        {
            await guest.DisposeAsync();
        }
    }

    /// <summary>Starts a live restore of <paramref name="archive"/> onto a real guest booted on its disks (its agent may not answer yet).</summary>
    private static async Task<(LiveRestoreSession Session, RealGuest Guest)> StartLiveAsync(ProviderConnection connection, string archive,
        TempDirectory work, TimeSpan? reconnectDelay = null)
    {
        RealGuest? guest = null;
        LiveRestoreSession session = await new LiveRestoreRunner(connection, NullLogger<LiveRestoreRunner>.Instance).StartAsync(archive,
            new LiveRestoreOptions
            {
                TargetDirectory = work.File("live"), BandwidthLimit = SlowStream, ReconnectDelay = reconnectDelay ?? TimeSpan.FromSeconds(30),
            },
            async (restored, _) =>
            {
                guest = await RealGuest.StartOnAsync(work.File("restored"),
                    restored.Disks.Select(d => (d.BlockdevJson, d.NodeName, LiveRestoreDisk.DeviceErrorProperties)));
                return guest.QmpSocket;
            }, CancellationToken.None).WaitAsync(Bound);
        return (session, guest!);
    }

    /// <summary>For comparison (printed, not asserted): a full restore to raw disks, then a boot on them, to the agent's first answer.</summary>
    private async Task MeasurePlainRestoreAndBootAsync(ProviderConnection connection, string archive, TempDirectory work)
    {
        var clock = Stopwatch.StartNew();
        var restored = await new VmRestoreRunner(connection, NullLogger<VmRestoreRunner>.Instance)
            .RestoreAsync(archive, new VmRestoreOptions { TargetDirectory = work.File("plain") }, CancellationToken.None).WaitAsync(Bound);
        TimeSpan restoreTime = clock.Elapsed;
        await using var guest = await RealGuest.StartOnAsync(work.File("plain-guest"), restored.Disks.Values.Select((image, n) =>
            (new JsonObject { ["driver"] = "raw", ["node-name"] = $"plain{n}", ["file"] = new JsonObject { ["driver"] = "file", ["filename"] = image } }.ToJsonString(),
                $"plain{n}", "rerror=report")));
        await guest.WaitForAgentAsync(RealGuest.BootBound);
        output.WriteLine($"plain restore: {restoreTime.TotalSeconds:F1} s; plain restore then boot to the agent's first answer: {clock.Elapsed.TotalSeconds:F1} s");
    }

    private static async Task StopAsync(ChildProcess provider)
    {
        provider.Terminate();
        await provider.WaitForExitAsync(TimeSpan.FromMinutes(1));
    }

    /// <summary>Freezes the guest through its agent (its hook records manifest <paramref name="name"/>), runs <paramref name="whileFrozen"/>, thaws.</summary>
    private static async Task<IReadOnlyDictionary<string, string>> FreezeAsync(RealGuest guest, string name, Func<Task> whileFrozen)
    {
        await using var agent = await guest.ConnectAgentAsync(TimeSpan.FromSeconds(60));
        using var cts = new CancellationTokenSource(TimeSpan.FromMinutes(5));
        await agent.FreezeAsync(cts.Token);
        try
        {
            var manifest = await guest.Manifests.WaitForAsync(name, TimeSpan.FromMinutes(2));
            await whileFrozen();
            return manifest;
        }
        finally
        {
            await agent.ThawAsync(cts.Token);
        }
    }

    private static void AssertSeedFilesOf(IReadOnlyDictionary<string, string> backup, IReadOnlyDictionary<string, string> seen)
    {
        var seeds = backup.Where(e => e.Key.Contains("/seed/", StringComparison.Ordinal)).ToList();
        Assert.Equal(8 * RealGuest.DiskCount, seeds.Count);
        foreach (var (path, hash) in seeds)
        {
            Assert.True(seen.TryGetValue(path, out string? found) && found == hash, $"{path}: {found ?? "missing"}, the backup has {hash}");
        }
    }
}
