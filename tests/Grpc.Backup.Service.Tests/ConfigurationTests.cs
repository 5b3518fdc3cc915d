using Grpc.Backup.Service.Internal.Configuration;
using Grpc.Backup.Service.Tests.Infrastructure;

namespace Grpc.Backup.Service.Tests;

/// <summary>
/// Bad configuration is refused when it is loaded, with the file, the line and the reason; and grpc-backupd refuses to
/// start on it (exit 78), listing every error at once.
/// </summary>
public sealed class ConfigurationTests : IDisposable
{
    private const string Guest = """
        type: vm
        name: web
        qmp: /run/qemu/100.qmp
        tags: prod web
        disk: drive-virtio0 file=/var/lib/images/100.qcow2 format=qcow2 node=fmt0 filter=top0 throttle-group=tg0
        """;

    private readonly TempDirectory _dir = new();

    public ConfigurationTests()
    {
        foreach (string sub in (string[])["guests", "storages", "jobs"])
        {
            Directory.CreateDirectory(_dir.File(sub));
        }
        Write("guests/100.conf", Guest);
        Write("guests/101.conf", Guest.Replace("name: web", "name: db", StringComparison.Ordinal).Replace("prod web", "prod db", StringComparison.Ordinal));
        Write("storages/dir.conf", "endpoint: unix:/run/grpc-backup/dir.sock\noption: compression=zstd\nmax-concurrent: 2\n");
    }

    public void Dispose() => _dir.Dispose();

    [Fact]
    public void A_valid_directory_loads_with_selection_schedule_retention_and_notes()
    {
        Write("host.conf", "node: pve1\nmax-backups: 3\nhistory-keep-days: 30\nhistory-keep-runs: 12\n");
        Write("jobs/nightly.conf", """
            storage: dir
            tags: db
            guests: 100
            exclude: 102
            schedule: 30 2 * * *
            repeat-missed: yes
            bwlimit: 50M
            keep-last: 3
            keep-daily: 7
            notes-template: {{guestname}} ({{vmid}}) on {{node}}
            priority: 2
            mode: suspend
            """);
        ServiceConfiguration config = Load();
        Assert.Equal(("pve1", 3u), (config.Host.Node, config.Host.MaxBackups));
        Assert.Equal((30u, 12u), (config.Host.HistoryKeepDays, config.Host.HistoryKeepRuns));
        JobConfig job = config.Jobs["nightly"];
        Assert.Equal(["100", "101"], job.Selection.Resolve(config.Guests.Keys, id => config.Guests[id].Tags));
        Assert.Equal(50UL << 20, job.BandwidthLimit);
        Assert.Equal(JobMode.Suspend, job.Mode);
        Assert.Equal((3u, 7u), (job.Retention.KeepLast, job.Retention.KeepDaily));
        Assert.Equal("db (101) on pve1", job.Notes!.Render("db", "101", "pve1"));
        var next = job.Schedule!.GetNextOccurrence(new DateTime(2026, 1, 1, 0, 0, 0, DateTimeKind.Utc), TimeZoneInfo.Utc);
        Assert.Equal(new DateTime(2026, 1, 1, 2, 30, 0, DateTimeKind.Utc), next);
        Assert.Equal("zstd", config.Storages["dir"].Options["compression"]);
    }

    [Theory]
    [InlineData("jobs/a.conf", "storage: dir\nguests: all\nschedule: 61 * * * *\n", "jobs/a.conf:3: schedule '61 * * * *' is not valid cron")]
    [InlineData("jobs/a.conf", "storage: dir\nguests: all\nschedule: * * *\n", "jobs/a.conf:3: schedule '* * *' has 3 fields")]
    [InlineData("jobs/a.conf", "storage: nas\nguests: all\n", "jobs/a.conf:1: storage 'nas' is not configured")]
    [InlineData("jobs/a.conf", "storage: dir\nguests: 100 107\n", "jobs/a.conf:2: guest '107' is not in the inventory")]
    [InlineData("jobs/a.conf", "storage: dir\nguests: all\nkeep-last: many\n", "jobs/a.conf:3: keep-last: expected a whole number")]
    [InlineData("jobs/a.conf", "storage: dir\nguests: all\nnotes-template: {{hostname}}\n", "jobs/a.conf:3: unknown placeholder '{{hostname}}'")]
    [InlineData("jobs/a.conf", "storage: dir\nguests: all\nmode: sometimes\n", "jobs/a.conf:3: mode 'sometimes' is not known")]
    [InlineData("jobs/a.conf", "storage: dir\nguests: all\nbwlimit: fast\n", "jobs/a.conf:3: bwlimit: expected bytes")]
    [InlineData("jobs/a.conf", "storage: dir\nguests: all\nhook: /nonexistent/hook\n", "jobs/a.conf:3: /nonexistent/hook does not exist")]
    [InlineData("jobs/a.conf", "storage: dir\nguests: all\nstorage: dir\n", "jobs/a.conf:3: 'storage' is already given on line 1")]
    [InlineData("jobs/a.conf", "storage: dir\nguests: all\ncolour: blue\n", "jobs/a.conf:3: unknown key 'colour'")]
    [InlineData("jobs/a.conf", "guests: all\n", "jobs/a.conf:0: missing 'storage: NAME'")]
    [InlineData("jobs/a.conf", "storage: dir\n# no guests\n", "jobs/a.conf:0: a job needs 'guests: all'")]
    [InlineData("jobs/a.conf", "storage: dir\nguests: all\nrepeat-missed: yes\n", "jobs/a.conf:3: repeat-missed needs a schedule")]
    [InlineData("jobs/a.conf", "kind: verify\nstorage: dir\nguests: all\nkeep-last: 3\n", "jobs/a.conf:4: 'keep-last' is for backup jobs")]
    [InlineData("jobs/a.conf", "kind: verify\nstorage: dir\nguests: all\nverify: sometimes\n", "jobs/a.conf:4: verify 'sometimes' is not known")]
    [InlineData("jobs/a.conf", "storage: dir\nguests: all\nverify: latest\n", "jobs/a.conf:3: 'verify' needs 'kind: verify'")]
    [InlineData("jobs/a.conf", "kind: check\nstorage: dir\nguests: all\n", "jobs/a.conf:1: kind 'check' is not known")]
    [InlineData("storages/b.conf", "endpoint: tcp://10.0.0.1:50051\n", "storages/b.conf:1: endpoint 'tcp://10.0.0.1:50051' is not of the form unix:PATH")]
    [InlineData("storages/b.conf", "endpoint: unix:/a.sock\nunit: b.socket\n", "storages/b.conf:2: the provider is already given on line 1")]
    [InlineData("storages/b.conf", "endpoint: unix:/a.sock\noption: password=hunter2\n", "storages/b.conf:2: option 'password' looks like a secret")]
    [InlineData("storages/b.conf", "unit: missing.socket\n", "storages/b.conf:1: socket unit missing.socket not found")]
    [InlineData("storages/b.conf", "option: a=b\n", "storages/b.conf:0: missing 'endpoint")]
    [InlineData("host.conf", "max-backups: 0\n", "host.conf:1: max-backups must be at least 1")]
    [InlineData("host.conf", "node: a\nhistory-keep-days: ninety\n", "host.conf:2: history-keep-days: expected a whole number from 0 to 36500, got 'ninety'")]
    [InlineData("host.conf", "history-keep-runs: -1\n", "host.conf:1: history-keep-runs: expected a whole number from 0 to 1000000, got '-1'")]
    [InlineData("host.conf", "history-keep-runs: 5\nhistory-keep-runs: 6\n", "host.conf:2: 'history-keep-runs' is given twice")]
    [InlineData("host.conf", "cluster-ca: /etc/ca.crt\n", "host.conf:1: 'cluster-ca' needs cluster-endpoints (without it this host runs alone)")]
    [InlineData("host.conf", "cluster-endpoints: http://127.0.0.1:2379 https://127.0.0.1:2380\n", "host.conf:1: cluster-endpoints: all members are http:// or all are https://")]
    [InlineData("host.conf", "cluster-endpoints: 127.0.0.1:2379\n", "host.conf:1: cluster-endpoints: '127.0.0.1:2379' is not an etcd member's")]
    [InlineData("host.conf", "cluster-endpoints: http://127.0.0.1:2379\ncluster-ca: /etc/ca.crt\n", "host.conf:0: cluster-ca, cluster-cert and cluster-key need https://")]
    [InlineData("host.conf", "cluster-endpoints: https://127.0.0.1:2379\ncluster-cert: /etc/host.crt\n", "host.conf:0: cluster-cert and cluster-key go together")]
    [InlineData("host.conf", "cluster-endpoints: http://127.0.0.1:2379\ncluster-lease-ttl: 1\n", "host.conf:2: cluster-lease-ttl must be at least 2 seconds")]
    [InlineData("storages/b.conf", "endpoint: unix:/a.sock\noption: fencing-token=storage/b/0@9\n", "storages/b.conf:2: option 'fencing-token' is the cluster's")]
    [InlineData("storages/b.conf", "endpoint: unix:/a.sock\ncluster-max-backups: 0\n", "storages/b.conf:2: cluster-max-backups must be at least 1")]
    [InlineData("guests/102.conf", "type: vm\nqmp: relative.sock\n", "guests/102.conf:2: 'relative.sock' is not an absolute path")]
    [InlineData("guests/102.conf", "type: vm\nqmp: /q.sock\ntags: ok b@d\n", "guests/102.conf:3: 'b@d' is not a valid tag")]
    public void Bad_configuration_is_refused_with_file_line_and_reason(string file, string text, string expected)
    {
        Write(file, text.Replace("\\n", "\n", StringComparison.Ordinal) + (file.StartsWith("guests", StringComparison.Ordinal) && !text.Contains("disk:", StringComparison.Ordinal)
            ? "disk: d0 file=/x.raw format=raw node=fmt0 filter=top0\n" : ""));
        var error = Assert.Throws<ConfigurationErrorsException>(Load);
        Assert.Contains(_dir.File(expected), error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_secret_file_must_be_root_only_and_a_hook_must_not_be_writable_by_others()
    {
        string secret = _dir.File("secret");
        File.WriteAllText(secret, "hunter2");
        File.SetUnixFileMode(secret, (UnixFileMode)0b110_100_100);
        Write("storages/b.conf", $"endpoint: unix:/a.sock\nsecret: password {secret}\n");
        string hook = _dir.File("hook");
        File.WriteAllText(hook, "#!/bin/sh\n");
        File.SetUnixFileMode(hook, (UnixFileMode)0b111_111_101);
        Write("jobs/a.conf", $"storage: dir\nguests: all\nhook: {hook}\n");
        var error = Assert.Throws<ConfigurationErrorsException>(Load);
        Assert.Contains($"storages/b.conf:2: secret file {secret} is readable by group or others (mode 644)", error.Message, StringComparison.Ordinal);
        Assert.Contains($"jobs/a.conf:3: {hook} is writable by group or others (mode 775)", error.Message, StringComparison.Ordinal);
        // The secret's value never appears; its path is passed to the provider as an option.
        Assert.DoesNotContain("hunter2", error.Message, StringComparison.Ordinal);
        File.SetUnixFileMode(secret, (UnixFileMode)0b110_000_000);
        File.SetUnixFileMode(hook, (UnixFileMode)0b111_101_101);
        Assert.Equal(secret, Load().Storages["b"].Options["password-file"]);
    }

    [Fact]
    public void A_systemd_socket_unit_names_the_endpoint()
    {
        Directory.CreateDirectory(_dir.File("units"));
        File.WriteAllText(_dir.File("units/grpc-backup-dir.socket"), "[Socket]\nListenStream=/run/grpc-backup/d.sock\nListenSequentialPacket=/run/grpc-backup/d.sock.fds\n");
        IReadOnlyList<string> saved = SystemdSocketUnit.SearchPath;
        SystemdSocketUnit.SearchPath = [_dir.File("units")];
        try
        {
            Write("storages/b.conf", "unit: grpc-backup-dir.socket\n");
            Assert.Equal("/run/grpc-backup/d.sock", Load().Storages["b"].Endpoint.SocketPath);
        }
        finally
        {
            SystemdSocketUnit.SearchPath = saved;
        }
    }

    [Fact]
    public async Task The_service_refuses_to_start_and_lists_every_error()
    {
        Write("jobs/a.conf", "storage: nas\nguests: all\n");
        Write("jobs/b.conf", "storage: dir\nguests: all\nschedule: nope\n");
        var (exit, stdout, stderr) = await ChildProcess.RunAsync("dotnet", [ServiceProcess.ServiceDll, "--config", _dir.Path, "--state", _dir.File("state"), "--check-config"]);
        Assert.True(exit == 78, stdout + stderr);
        Assert.Contains($"{_dir.File("jobs/a.conf")}:1: storage 'nas' is not configured", stderr, StringComparison.Ordinal);
        Assert.Contains($"{_dir.File("jobs/b.conf")}:3: schedule 'nope' has 1 fields", stderr, StringComparison.Ordinal);
        Assert.Contains("configuration refused (2 error(s))", stderr, StringComparison.Ordinal);
        Assert.False(Directory.Exists(_dir.File("state")), "nothing was started");

        File.Delete(_dir.File("jobs/a.conf"));
        File.Delete(_dir.File("jobs/b.conf"));
        (exit, stdout, stderr) = await ChildProcess.RunAsync("dotnet", [ServiceProcess.ServiceDll, "--config", _dir.Path, "--check-config"]);
        Assert.True(exit == 0, stderr);
        Assert.Contains("configuration OK: 2 guest(s), 1 storage(s), 0 job(s)", stdout, StringComparison.Ordinal);
    }

    private ServiceConfiguration Load() => ServiceConfiguration.Load(_dir.Path, _dir.File("state"));

    private void Write(string relative, string text) => File.WriteAllText(_dir.File(relative), text);
}
