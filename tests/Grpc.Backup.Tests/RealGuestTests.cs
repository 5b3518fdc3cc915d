using Grpc.Backup.Host;
using Grpc.Backup.Orchestrator;
using Grpc.Backup.Protocol.V1;
using Grpc.Backup.Providers.Borg.Tests.Infrastructure;
using Grpc.Backup.Providers.Restic.Tests.Infrastructure;
using Grpc.Backup.Tests.Infrastructure;
using Microsoft.Extensions.Logging.Abstractions;
using Xunit.Abstractions;

namespace Grpc.Backup.Tests;

/// <summary>
/// Backups of a real Linux guest (<see cref="RealGuest"/>): Debian's kernel, ext4 on virtio-blk, the real
/// qemu-guest-agent whose fsfreeze hook quiesces a writer and records the manifest the restores are checked against.
/// </summary>
public sealed class RealGuestTests(ITestOutputHelper output)
{
    [Fact]
    public async Task The_guest_boots_and_its_real_agent_answers()
    {
        using var work = new TempDirectory();
        await using var guest = await RealGuest.StartAsync(work.File("guest"));
        output.WriteLine($"boot to the agent's first guest-ping: {guest.BootTime.TotalSeconds:F1} s");

        Assert.Equal("running", await guest.StatusAsync());
        await using var agent = await guest.ConnectAgentAsync(TimeSpan.FromSeconds(30));
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        Assert.Equal("thawed", await agent.GetFreezeStatusAsync(cts.Token));
        // The agent's own report names the version Debian ships, not a stand-in.
        string version = (string)(await agent.ExecuteAsync("guest-info", cts.Token))!["version"]!;
        Assert.StartsWith("7.2", version, StringComparison.Ordinal);
        Assert.Contains($"rcS: up; {RealGuest.DiskCount} data disk(s) mounted", guest.Console(), StringComparison.Ordinal);
        Assert.Equal(0, guest.Manifests.FreezeCount);
    }

    [Fact]
    public async Task An_application_consistent_backup_through_the_directory_provider_restores_every_file_of_its_freeze()
    {
        await using var provider = await DirectoryProviderProcess.StartAsync();
        await using var connection = await ProviderConnection.ConnectAsync(provider.Endpoint);
        await AssertApplicationConsistentRoundTripAsync(connection);
    }

    [Fact]
    public async Task An_application_consistent_backup_through_the_borg_provider_restores_every_file_of_its_freeze()
    {
        await using var provider = await BorgProvider.StartAsync();
        await AssertApplicationConsistentRoundTripAsync(provider.Connection);
    }

    [Fact]
    public async Task An_application_consistent_backup_through_the_restic_provider_restores_every_file_of_its_freeze()
    {
        await using var provider = await ResticProviderProcess.StartAsync();
        await using var connection = await ProviderConnection.ConnectAsync(provider.Endpoint);
        await AssertApplicationConsistentRoundTripAsync(connection);
    }

    [Fact]
    public async Task Stop_mode_shuts_the_guest_down_by_ACPI_backs_up_its_cleanly_unmounted_disks_and_starts_it_again()
    {
        using var work = new TempDirectory();
        await using var guest = await RealGuest.StartAsync(work.File("guest"));
        await using var provider = await DirectoryProviderProcess.StartAsync();
        await using var connection = await ProviderConnection.ConnectAsync(provider.Endpoint);
        guest.DrainEvents();

        VmBackupResult result = await VmBackupTests.BackupAsync(connection, guest.Guest, work, mode: VmBackupMode.Stop);

        Assert.Equal(Consistency.Stopped, result.Consistency);
        // The guest's own poweroff (its shutdown script ran: the manifest "shutdown"), held by QEMU, then powered on again.
        // (SeaBIOS resets the machine once more itself on a warm start: a RESET may follow the RESUME.)
        List<string> events = guest.DrainEvents();
        Assert.True(events.IndexOf("POWERDOWN") == 0 && events.IndexOf("SHUTDOWN") > 0 && events.IndexOf("RESET") > events.IndexOf("SHUTDOWN")
            && events.IndexOf("RESUME") > events.IndexOf("RESET"), string.Join(' ', events));
        Assert.Equal("running", await guest.StatusAsync());
        Assert.Equal(0, guest.Manifests.FreezeCount); // no agent freeze: the guest was off
        var shutdown = await guest.Manifests.WaitForAsync("shutdown", TimeSpan.FromSeconds(30));
        await AssertRestoresAsync(connection, result, shutdown, work);
        // It boots again from the disks it left: its agent answers and its writer runs.
        await guest.WaitForAgentAsync(RealGuest.BootBound);
        Assert.Equal(2, CountOf(guest.Console(), "rcS: up"));
    }

    [Fact]
    public async Task A_provider_killed_mid_backup_leaves_the_guest_running_thawed_and_its_writes_land()
    {
        using var work = new TempDirectory();
        await using var guest = await RealGuest.StartAsync(work.File("guest"));
        await using var provider = await DirectoryProviderProcess.StartAsync();
        var copying = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        Task<VmBackupResult> backup;
        await using (var connection = await ProviderConnection.ConnectAsync(provider.Endpoint))
        {
            // 1 MiB/s keeps the copy going long enough to kill the provider in the middle of it.
            backup = VmBackupTests.BackupAsync(connection, guest.Guest, work, bandwidthLimit: 1 << 20,
                progress: new SynchronousProgress(p => { if (p.BytesDone > 0) { copying.TrySetResult(); } }));
            await Task.WhenAny(copying.Task, backup);
            Assert.True(copying.Task.IsCompleted, $"the backup ended before copying: {backup.Exception?.GetBaseException().Message}");
            await provider.KillAsync();
            Exception failure = await Assert.ThrowsAnyAsync<Exception>(() => backup.WaitAsync(TimeSpan.FromMinutes(3)));
            Assert.IsNotType<TimeoutException>(failure);
        }

        Assert.Equal("running", await guest.StatusAsync());
        await using (var agent = await guest.ConnectAgentAsync(TimeSpan.FromSeconds(60)))
        {
            using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(30));
            Assert.Equal("thawed", await agent.GetFreezeStatusAsync(cts.Token));
        }
        var graph = await GuestGraph.QueryAsync(guest.QmpSocket);
        Assert.True(graph.Exports.Count == 0 && !graph.Nodes.Any(n => n.StartsWith("gb", StringComparison.Ordinal)), graph.ToString());
        var killed = await guest.Manifests.WaitForAsync("freeze-1", TimeSpan.FromSeconds(30));

        // The next backup sees what the guest wrote since: its freeze differs from the killed one's, and restores exactly.
        await provider.RestartAsync();
        await using var again = await ProviderConnection.ConnectAsync(provider.Endpoint);
        VmBackupResult result = await VmBackupTests.BackupAsync(again, guest.Guest, work);
        Assert.Equal(Consistency.Application, result.Consistency);
        var next = await guest.Manifests.WaitForAsync("freeze-2", TimeSpan.FromSeconds(30));
        Assert.NotEqual(killed.OrderBy(e => e.Key, StringComparer.Ordinal), next.OrderBy(e => e.Key, StringComparer.Ordinal));
        await AssertRestoresAsync(again, result, next, work);
    }

    private async Task AssertApplicationConsistentRoundTripAsync(ProviderConnection connection)
    {
        using var work = new TempDirectory();
        await using var guest = await RealGuest.StartAsync(work.File("guest"));
        output.WriteLine($"boot: {guest.BootTime.TotalSeconds:F1} s");

        VmBackupResult result = await VmBackupTests.BackupAsync(connection, guest.Guest, work);

        Assert.Equal(Consistency.Application, result.Consistency);
        var manifest = await guest.Manifests.WaitForAsync("freeze-1", TimeSpan.FromSeconds(30));
        Assert.Equal(1, guest.Manifests.FreezeCount);
        // The writer had written on both disks before the freeze (not only the seed files mkfs put there).
        for (int n = 0; n < RealGuest.DiskCount; n++)
        {
            Assert.Contains(manifest.Keys, k => k.StartsWith($"data{n}/files/", StringComparison.Ordinal));
        }
        await using (var agent = await guest.ConnectAgentAsync(TimeSpan.FromSeconds(60)))
        {
            using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(30));
            Assert.Equal("thawed", await agent.GetFreezeStatusAsync(cts.Token));
        }
        await AssertRestoresAsync(connection, result, manifest, work);
        output.WriteLine($"phases: {result.Phases}");
    }

    /// <summary>Every disk restores to a clean ext4 holding exactly the manifest's files.</summary>
    private static async Task AssertRestoresAsync(ProviderConnection connection, VmBackupResult backup,
        IReadOnlyDictionary<string, string> manifest, TempDirectory work)
    {
        string target = work.File("restore-" + backup.ArchiveName.Replace('/', '-'));
        var restored = await new VmRestoreRunner(connection, NullLogger<VmRestoreRunner>.Instance)
            .RestoreAsync(backup.ArchiveName, new VmRestoreOptions { TargetDirectory = target }, CancellationToken.None);
        Assert.Equal(RealGuest.DiskCount, restored.Disks.Count);
        foreach (var (device, image) in restored.Disks)
        {
            await Ext4Image.AssertMatchesAsync(image, RealGuest.LabelOf(device), manifest, $"{target}-files/{device}");
        }
    }

    private static int CountOf(string text, string value)
    {
        int count = 0;
        for (int i = text.IndexOf(value, StringComparison.Ordinal); i >= 0; i = text.IndexOf(value, i + value.Length, StringComparison.Ordinal))
        {
            count++;
        }
        return count;
    }
}
