using Grpc.Backup.Cluster.Tests.Infrastructure;
using Grpc.Backup.Service.Tests.Infrastructure;

namespace Grpc.Backup.Service.Tests;

/// <summary>
/// Two grpc-backupd "hosts", each with its own configuration, state, sockets and demo guests, in one cluster over a
/// real etcd 3.4, backing up into one shared directory provider: the storage's cluster-wide limit is measured from the
/// hooks' backup-start/backup-end times of both hosts together.
/// </summary>
public sealed class ClusterTests
{
    [Fact]
    public async Task A_storages_cluster_limit_holds_across_two_hosts_and_each_backup_carries_its_fencing_token()
    {
        await using EtcdCluster etcd = await EtcdCluster.StartAsync();
        await using var provider = await DirectoryProviderProcess.StartAsync();
        await using var hostA = ServiceProcess.Create();
        await using var hostB = ServiceProcess.Create();
        await using var guest100 = await DemoGuestProcess.StartAsync(hostA.Root.File("g100"));
        await using var guest101 = await DemoGuestProcess.StartAsync(hostA.Root.File("g101"), "--guest-id", "101");
        await using var guest200 = await DemoGuestProcess.StartAsync(hostB.Root.File("g200"), "--guest-id", "200");
        await using var guest201 = await DemoGuestProcess.StartAsync(hostB.Root.File("g201"), "--guest-id", "201");
        hostA.AddGuest(guest100);
        hostA.AddGuest(guest101, "101");
        hostB.AddGuest(guest200, "200");
        hostB.AddGuest(guest201, "201");
        string endpoints = string.Join(' ', etcd.Endpoints.Select(e => e.GetLeftPart(UriPartial.Authority)));

        async Task<double> RunBothAsync(uint clusterMax)
        {
            var logs = new List<string>();
            foreach (var (host, node) in new[] { (hostA, "host-a"), (hostB, "host-b") })
            {
                string hookLog = host.Root.File("hook.log");
                File.Delete(hookLog);
                logs.Add(hookLog);
                // Each host alone would run both its guests at once (2 host slots, 2 storage slots): only the cluster limit serialises.
                host.WriteConfig("storages/dir.conf", $"endpoint: {provider.Endpoint}\nmax-concurrent: 2\ncluster-max-backups: {clusterMax}\n");
                host.WriteConfig("jobs/all.conf", $"storage: dir\nguests: all\nfleecing-dir: {host.FleecingDirectory}\nhook: {HookScript.Create(host.Root.Path, hookLog)}\n");
                host.WriteConfig("host.conf", $"node: {node}\nmax-backups: 2\ncluster-endpoints: {endpoints}\ncluster-lease-ttl: 5\n");
                await host.StartAsync();
            }
            foreach (var host in new[] { hostA, hostB })
            {
                await Poll.UntilAsync(() => Task.FromResult(host.Process!.StandardError.Contains("joined the cluster", StringComparison.Ordinal)), TimeSpan.FromSeconds(60),
                    "the host joining the cluster");
            }
            var runs = await Task.WhenAll(hostA.CliAsync("backup", "--job", "all"), hostB.CliAsync("backup", "--job", "all"));
            foreach (var (exit, stdout, stderr) in runs)
            {
                Assert.True(exit == 0, stderr + stdout);
            }
            await hostA.StopAsync();
            await hostB.StopAsync();
            return MaxOverlapMs([.. logs.SelectMany(HookScript.Read)]);
        }

        double serial = await RunBothAsync(1);
        // Every backup's JobInit carried its slot's token, and the repository kept the newest.
        string fence = Path.Combine(provider.RepositoryPath, "@fencing", "storage", "dir", "0");
        Assert.True(long.Parse(await File.ReadAllTextAsync(fence), System.Globalization.CultureInfo.InvariantCulture) > 0);
        double parallel = await RunBothAsync(4);

        Assert.True(serial <= 0, $"with cluster-max-backups 1 two backups overlapped by {serial} ms");
        Assert.True(parallel > 0, $"with cluster-max-backups 4 no backups overlapped ({parallel} ms): the measure is blind");
    }

    /// <summary>The longest time any two guests' backup-start..backup-end intervals overlapped (negative: the smallest gap).</summary>
    private static double MaxOverlapMs(IReadOnlyList<HookCall> calls)
    {
        var intervals = calls.Where(c => c.Phase == "backup-start")
            .Select(s => (Start: s.TimeMs, End: calls.First(e => e.Phase == "backup-end" && e.Guest == s.Guest && e.TimeMs >= s.TimeMs).TimeMs))
            .ToList();
        Assert.Equal(4, intervals.Count);
        return intervals.SelectMany((a, i) => intervals.Skip(i + 1).Select(b => (double)(Math.Min(a.End, b.End) - Math.Max(a.Start, b.Start)))).Max();
    }
}
