using Grpc.Backup.Service.Tests.Infrastructure;

namespace Grpc.Backup.Service.Tests;

/// <summary>The per-host backup limit (MAX_BACKUPS_HOST), measured: the hook's backup-start/backup-end times per guest.</summary>
public sealed class ConcurrencyTests
{
    [Fact]
    public async Task At_most_max_backups_guests_are_backed_up_at_once()
    {
        await using var service = ServiceProcess.Create();
        await using var first = await DemoGuestProcess.StartAsync(service.Root.File("g100"));
        await using var second = await DemoGuestProcess.StartAsync(service.Root.File("g101"), "--guest-id", "101");
        await using var provider = await DirectoryProviderProcess.StartAsync();
        string hookLog = service.Root.File("hook.log");
        string hook = HookScript.Create(service.Root.Path, hookLog);
        service.AddGuest(first);
        service.AddGuest(second, "101");
        // Two slots in the repository, so only the host limit can serialise.
        service.WriteConfig("storages/dir.conf", $"endpoint: {provider.Endpoint}\nmax-concurrent: 2\n");
        service.WriteConfig("jobs/all.conf", $"storage: dir\nguests: all\nfleecing-dir: {service.FleecingDirectory}\nhook: {hook}\n");

        service.WriteConfig("host.conf", "max-backups: 1\n");
        await service.StartAsync();
        var (exit, stdout, stderr) = await service.CliAsync("backup", "--job", "all");
        Assert.True(exit == 0, stderr + stdout);
        double serialOverlap = MaxOverlapMs(HookScript.Read(hookLog));
        await service.KillAsync();
        File.Delete(hookLog);

        service.WriteConfig("host.conf", "max-backups: 2\n");
        await service.StartAsync();
        (exit, stdout, stderr) = await service.CliAsync("backup", "--job", "all");
        Assert.True(exit == 0, stderr + stdout);
        double parallelOverlap = MaxOverlapMs(HookScript.Read(hookLog));

        Assert.True(serialOverlap <= 0, $"with max-backups 1 two backups overlapped by {serialOverlap} ms");
        Assert.True(parallelOverlap > 0, $"with max-backups 2 the backups did not overlap ({parallelOverlap} ms): the measure is blind");
    }

    /// <summary>The longest time two guests' backup-start..backup-end intervals overlapped (negative: the gap between them).</summary>
    private static double MaxOverlapMs(IReadOnlyList<HookCall> calls)
    {
        var intervals = calls.Where(c => c.Phase == "backup-start")
            .Select(s => (Start: s.TimeMs, End: calls.First(e => e.Phase == "backup-end" && e.Guest == s.Guest && e.TimeMs >= s.TimeMs).TimeMs))
            .ToList();
        Assert.Equal(2, intervals.Count);
        return Math.Min(intervals[0].End, intervals[1].End) - Math.Max(intervals[0].Start, intervals[1].Start);
    }
}
