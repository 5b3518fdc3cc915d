using Grpc.Backup.Cluster.Tests.Infrastructure;
using Grpc.Core;

namespace Grpc.Backup.Cluster.Tests;

/// <summary>
/// etcd's own auth with real certificates made in the test: a user and role per host (its certificate's CN), so one
/// host's credentials cannot write another host's keys, and a certificate naming no user is refused.
/// </summary>
public sealed class ClusterAccessTests
{
    [Fact]
    public async Task EachHostWritesOnlyItsOwnKeysAndTheSharedOnes()
    {
        await using EtcdCluster etcd = await EtcdCluster.StartAsync(tls: true);
        EtcdCertificates pki = etcd.Tls!;
        foreach (string name in new[] { "root", "host-a", "host-b", "host-c" })
        {
            await pki.AddClientAsync(name);
        }
        ClusterOptions admin = Options(etcd, "root");
        await ClusterAccess.AddHostAsync(admin, "host-a");
        await ClusterAccess.EnableAsync(admin);
        // Added after auth is on, by the administrator's command, and a second time: idempotent.
        for (int i = 0; i < 2; i++)
        {
            var (exit, _, stderr) = await CliAsync(etcd, "root", "add-host", "host-b");
            Assert.True(exit == 0, stderr);
        }
        // A host's certificate is no administrator: etcd refuses, in one line, exit 1.
        var (refusedExit, _, refused) = await CliAsync(etcd, "host-a", "add-host", "host-z");
        Assert.Equal(1, refusedExit);
        Assert.StartsWith("grpc-backup: etcd refused: PermissionDenied", refused, StringComparison.Ordinal);
        Assert.Single(refused.TrimEnd().Split('\n'));

        await using ClusterSession a = await ClusterSession.ConnectAsync(Options(etcd, "host-a"));
        await using ClusterSession b = await ClusterSession.ConnectAsync(Options(etcd, "host-b"));
        await a.RegisterGuestsAsync(["100"]);
        await b.RegisterGuestsAsync(["200"]);
        Assert.Equal(["100"], (await b.ListGuestsAsync())["host-a"]);
        await using (ClusterSlot slot = await a.AcquireSlotAsync("shared", 1, 1))
        {
            Assert.True(slot.Revision > 0);
        }
        await using (ClusterLeadership leader = await b.CampaignAsync("scheduler").WaitAsync(TimeSpan.FromSeconds(60)))
        {
            Assert.Equal("host-b", await a.LeaderAsync("scheduler"));
        }

        // host-a's certificate cannot write host-b's registrations or per-host slots...
        RpcException denied = await Assert.ThrowsAsync<RpcException>(() => a.Keys.PutAsync("/grpc-backup/guests/host-b/999", "", a.LeaseId, default));
        Assert.Equal(StatusCode.PermissionDenied, denied.StatusCode);
        denied = await Assert.ThrowsAsync<RpcException>(() => a.Keys.TryCreateAsync("/grpc-backup/slots/host/host-b/0", "host-a:x", a.LeaseId, default));
        Assert.Equal(StatusCode.PermissionDenied, denied.StatusCode);
        // ...nor anything outside the project's prefix, nor can it pose as host-b.
        denied = await Assert.ThrowsAsync<RpcException>(() => a.Keys.PutAsync("/other/key", "", 0, default));
        Assert.Equal(StatusCode.PermissionDenied, denied.StatusCode);
        ClusterOptions posing = Options(etcd, "host-a") with { Node = "host-b" };
        denied = await Assert.ThrowsAsync<RpcException>(() => ClusterSession.ConnectAsync(posing));
        Assert.Equal(StatusCode.PermissionDenied, denied.StatusCode);
        Assert.Equal(["200"], (await a.ListGuestsAsync())["host-b"]);

        // Definitions: the administrator applies them, checked by the hosts' own parser first (every error with its file
        // and line, nothing applied); a host reads them and cannot write them, directly or through the command.
        using var definitions = new TempDirectory();
        Directory.CreateDirectory(definitions.File("storages"));
        Directory.CreateDirectory(definitions.File("jobs"));
        await File.WriteAllTextAsync(definitions.File("storages/shared.conf"), "endpoint: unix:/run/grpc-backup/directory.sock\ncluster-max-backups: 2\n");
        await File.WriteAllTextAsync(definitions.File("jobs/nightly.conf"), "guests: all\nstorage: nowhere\n");
        await File.WriteAllTextAsync(definitions.File("jobs/weekly.conf"), "storage: shared\ntags: prod\nschedule: 0 3 * * 0\nkeep-daily: x\n");
        var (invalidExit, _, invalid) = await CliAsync(etcd, "root", "apply", definitions.Path);
        Assert.Equal(78, invalidExit);
        Assert.Contains($"{definitions.Path}/jobs/nightly.conf:2: storage 'nowhere' is not configured (no storages/nowhere.conf)", invalid, StringComparison.Ordinal);
        Assert.Contains($"{definitions.Path}/jobs/weekly.conf:4: keep-daily: expected a whole number", invalid, StringComparison.Ordinal);
        Assert.Equal(0, (await a.ReadDefinitionsAsync()).Definitions.Revision);
        await File.WriteAllTextAsync(definitions.File("jobs/nightly.conf"), "guests: all\nstorage: shared\n");
        await File.WriteAllTextAsync(definitions.File("jobs/weekly.conf"), "storage: shared\ntags: prod\nschedule: 0 3 * * 0\n");
        var (applyExit, applied, applyErr) = await CliAsync(etcd, "root", "apply", definitions.Path);
        Assert.True(applyExit == 0, applyErr);
        Assert.StartsWith("applied 1 storage(s) and 2 job(s) as revision ", applied, StringComparison.Ordinal);
        var (read, _) = await a.ReadDefinitionsAsync();
        Assert.Equal(long.Parse(applied.Trim().Split(' ')[^1], System.Globalization.CultureInfo.InvariantCulture), read.Revision);
        Assert.Equal(["jobs/nightly.conf", "jobs/weekly.conf", "storages/shared.conf"], read.Files.Keys.Order(StringComparer.Ordinal));
        Assert.Equal("guests: all\nstorage: shared\n", read.Files["jobs/nightly.conf"]);
        // Applied again without weekly: the set is replaced whole.
        File.Delete(definitions.File("jobs/weekly.conf"));
        (applyExit, _, applyErr) = await CliAsync(etcd, "root", "apply", definitions.Path);
        Assert.True(applyExit == 0, applyErr);
        Assert.Equal(["jobs/nightly.conf", "storages/shared.conf"], (await b.ReadDefinitionsAsync()).Definitions.Files.Keys.Order(StringComparer.Ordinal));
        denied = await Assert.ThrowsAsync<RpcException>(() => a.Keys.PutAsync("/grpc-backup/config/jobs/evil.conf", "guests: all\nstorage: shared\n", 0, default));
        Assert.Equal(StatusCode.PermissionDenied, denied.StatusCode);
        var (hostApplyExit, _, hostApply) = await CliAsync(etcd, "host-a", "apply", definitions.Path);
        Assert.Equal(1, hostApplyExit);
        Assert.StartsWith("grpc-backup: etcd refused: PermissionDenied", hostApply, StringComparison.Ordinal);

        // A certificate from the cluster's CA whose CN is no user gets nothing.
        RpcException unknown = await Assert.ThrowsAnyAsync<RpcException>(() => ClusterSession.ConnectAsync(Options(etcd, "host-c")));
        Assert.NotEqual(StatusCode.OK, unknown.StatusCode);
    }

    private static Task<(int ExitCode, string Stdout, string Stderr)> CliAsync(EtcdCluster etcd, string identity, params string[] args)
    {
        var (cert, key) = etcd.Tls!.ClientCert(identity);
        string cli = Path.Combine(RepoPaths.Root, "src", "Grpc.Backup.Cli", "bin", RepoPaths.Configuration, "net10.0", "grpc-backup.dll");
        return ChildProcess.RunAsync("dotnet", [cli, "cluster", .. args, "--endpoints", string.Join(',', etcd.Endpoints),
            "--ca", etcd.Tls.CaCert, "--cert", cert, "--key", key], timeout: TimeSpan.FromMinutes(3));
    }

    private static ClusterOptions Options(EtcdCluster etcd, string name)
    {
        var (cert, key) = etcd.Tls!.ClientCert(name);
        return new ClusterOptions { Endpoints = etcd.Endpoints, Node = name, CaFile = etcd.Tls.CaCert, CertFile = cert, KeyFile = key };
    }
}
