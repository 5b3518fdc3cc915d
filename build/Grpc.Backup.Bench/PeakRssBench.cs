using System.Diagnostics;
using System.Globalization;

namespace Grpc.Backup.Bench;

/// <summary>
/// Peak memory of each side during a full backup of the dense (bench-sized) disk, against issue 16's goals: the
/// directory provider at most 64 MiB, the host at most 100 MiB. The host is the real program, grpc-backup in direct
/// mode as a process of its own (the other rows run the host inside the bench), backing up through the bench's
/// provider. The provider's peak is its VmHWM, reset just before (clear_refs); the host's is the kernel's maxrss of the
/// CLI's process (GNU time). The peer is the goal, so ratio = goal / ours: at least 1 meets it.
/// </summary>
internal static class PeakRssBench
{
    private const double ProviderGoalMiB = 64;
    private const double HostGoalMiB = 100;

    public static async Task<IReadOnlyList<BenchResult>> RunAsync(string work, string providerEndpoint, int providerPid, string cli,
        string guestDir, double fullBackupSeconds)
    {
        var (fleece, runtime) = BenchDirectories.Create(work);
        string maxRss = Path.Combine(work, "cli.maxrss");
        double providerIdle = ProcStatus.MiB(providerPid, "VmRSS");
        ProcStatus.ResetPeak(providerPid);
        var start = Stopwatch.GetTimestamp();
        await Tool.RunAsync("/usr/bin/time", "-f", "%M", "-o", maxRss, "dotnet", cli, "backup", "--endpoint", providerEndpoint,
            "--inventory", Path.Combine(guestDir, "inventory"), "--guest", "100", "--fleecing-dir", fleece, "--storage", "bench-rss",
            "--lock-dir", runtime);
        double seconds = Stopwatch.GetElapsedTime(start).TotalSeconds;
        double provider = ProcStatus.MiB(providerPid, "VmHWM");
        string after = string.Create(CultureInfo.InvariantCulture,
            $"anon {ProcStatus.MiB(providerPid, "RssAnon"):0} + file {ProcStatus.MiB(providerPid, "RssFile"):0} + shmem (JIT code) {ProcStatus.MiB(providerPid, "RssShmem"):0} MiB");
        // GNU time writes the kilobytes on the output file's last line.
        double host = long.Parse((await File.ReadAllLinesAsync(maxRss)).Last(l => l.Length > 0), CultureInfo.InvariantCulture) / 1024.0;
        string backup = string.Create(CultureInfo.InvariantCulture, $"grpc-backup direct-mode full backup {seconds:0.00} s (vm-full-nbd: {fullBackupSeconds:0.00} s)");
        return
        [
            new BenchResult("peak-rss-provider", provider, "goal", ProviderGoalMiB,
                string.Create(CultureInfo.InvariantCulture, $"VmHWM of the directory provider; {backup}; idle before {providerIdle:0} MiB; RSS after: {after}"), "MiB"),
            new BenchResult("peak-rss-host", host, "goal", HostGoalMiB, $"maxrss of the grpc-backup process; {backup}", "MiB"),
        ];
    }
}
