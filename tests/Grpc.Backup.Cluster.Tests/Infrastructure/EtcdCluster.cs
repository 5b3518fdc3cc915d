using System.Globalization;

namespace Grpc.Backup.Cluster.Tests.Infrastructure;

/// <summary>
/// Real etcd 3.4 members (Debian's etcd-server) on loopback ports picked at start, each with a data directory in a
/// private temp directory; ready once <c>etcdctl endpoint health</c> answers for every member. Disposing kills them all.
/// </summary>
internal sealed class EtcdCluster : IAsyncDisposable
{
    private const string Etcd = "/usr/bin/etcd";
    private const string Etcdctl = "/usr/bin/etcdctl";
    private readonly TempDirectory _directory;
    private readonly List<Member> _members = [];

    private EtcdCluster(TempDirectory directory, EtcdCertificates? tls)
    {
        _directory = directory;
        Tls = tls;
    }

    public EtcdCertificates? Tls { get; }

    /// <summary>Every member's client URL.</summary>
    public IReadOnlyList<Uri> Endpoints => [.. _members.Select(m => m.ClientUrl)];

    public IReadOnlyList<Member> Members => _members;

    public static async Task<EtcdCluster> StartAsync(int members = 1, bool tls = false)
    {
        var directory = new TempDirectory();
        EtcdCertificates? certificates = tls ? await EtcdCertificates.CreateAsync(directory.File("pki")) : null;
        var cluster = new EtcdCluster(directory, certificates);
        try
        {
            string scheme = tls ? "https" : "http";
            for (int i = 0; i < members; i++)
            {
                cluster._members.Add(new Member($"m{i}", new Uri($"{scheme}://127.0.0.1:{LoopbackPorts.Free()}"),
                    new Uri($"http://127.0.0.1:{LoopbackPorts.Free()}"), directory.File($"m{i}")));
            }
            string initial = string.Join(',', cluster._members.Select(m => $"{m.Name}={m.PeerUrl.GetLeftPart(UriPartial.Authority)}"));
            string token = "gbt-" + Guid.NewGuid().ToString("N")[..8];
            foreach (Member member in cluster._members)
            {
                member.Process = ChildProcess.Start(Etcd, [.. member.Arguments(initial, token), .. cluster.ServerTlsArguments()]);
            }
            foreach (Member member in cluster._members)
            {
                await cluster.WaitHealthyAsync(member);
            }
            return cluster;
        }
        catch
        {
            await cluster.DisposeAsync();
            throw;
        }
    }

    /// <summary>Runs etcdctl against every member (with the client certificate when the cluster uses TLS).</summary>
    public Task<(int ExitCode, string Stdout, string Stderr)> CtlAsync(params string[] arguments) =>
        ChildProcess.RunAsync(Etcdctl, [$"--endpoints={string.Join(',', Endpoints.Select(e => e.GetLeftPart(UriPartial.Authority)))}",
            .. ClientTlsArguments(), .. arguments], new Dictionary<string, string?> { ["ETCDCTL_API"] = "3" });

    /// <summary>The member that leads etcd's raft now, as the members' status (Maintenance.Status) says.</summary>
    public async Task<Member> LeaderAsync()
    {
        var (code, stdout, stderr) = await CtlAsync("endpoint", "status", "-w", "json");
        if (code != 0)
        {
            throw new InvalidOperationException($"etcdctl endpoint status: {stderr}");
        }
        using var document = System.Text.Json.JsonDocument.Parse(stdout);
        foreach (var endpoint in document.RootElement.EnumerateArray())
        {
            var status = endpoint.GetProperty("Status");
            if (status.GetProperty("header").GetProperty("member_id").GetUInt64() == status.GetProperty("leader").GetUInt64())
            {
                return _members.Single(m => m.ClientUrl.GetLeftPart(UriPartial.Authority) == endpoint.GetProperty("Endpoint").GetString());
            }
        }
        throw new InvalidOperationException($"no member leads: {stdout}");
    }

    private IEnumerable<string> ServerTlsArguments() => Tls is null ? [] :
        ["--cert-file", Tls.ServerCert, "--key-file", Tls.ServerKey, "--client-cert-auth", "--trusted-ca-file", Tls.CaCert];

    private IEnumerable<string> ClientTlsArguments() => Tls is null ? [] :
        ["--cacert", Tls.CaCert, "--cert", Tls.ClientCert("etcdctl").Cert, "--key", Tls.ClientCert("etcdctl").Key];

    private async Task WaitHealthyAsync(Member member)
    {
        DateTime deadline = DateTime.UtcNow + TimeSpan.FromSeconds(90);
        while (true)
        {
            var (code, _, stderr) = await ChildProcess.RunAsync(Etcdctl, [$"--endpoints={member.ClientUrl.GetLeftPart(UriPartial.Authority)}",
                "--command-timeout=5s", .. ClientTlsArguments(), "endpoint", "health"], new Dictionary<string, string?> { ["ETCDCTL_API"] = "3" });
            if (code == 0)
            {
                return;
            }
            if (member.Process!.HasExited)
            {
                throw new InvalidOperationException($"etcd {member.Name} exited; stderr:\n{member.Process.StandardError}");
            }
            if (DateTime.UtcNow > deadline)
            {
                throw new TimeoutException($"etcd {member.Name} not healthy within 90 s: {stderr}\netcd stderr:\n{member.Process.StandardError}");
            }
            await Task.Delay(100);
        }
    }

    public async ValueTask DisposeAsync()
    {
        foreach (Member member in _members)
        {
            if (member.Process is not null)
            {
                await member.Process.DisposeAsync();
            }
        }
        _directory.Dispose();
    }

    internal sealed record Member(string Name, Uri ClientUrl, Uri PeerUrl, string DataDirectory)
    {
        public ChildProcess? Process { get; set; }

        public IEnumerable<string> Arguments(string initialCluster, string token) =>
        [
            "--name", Name, "--data-dir", DataDirectory,
            "--listen-client-urls", ClientUrl.GetLeftPart(UriPartial.Authority), "--advertise-client-urls", ClientUrl.GetLeftPart(UriPartial.Authority),
            "--listen-peer-urls", PeerUrl.GetLeftPart(UriPartial.Authority), "--initial-advertise-peer-urls", PeerUrl.GetLeftPart(UriPartial.Authority),
            "--initial-cluster", initialCluster, "--initial-cluster-token", token, "--initial-cluster-state", "new",
            // The machine is shared and loaded: a slower heartbeat keeps a busy member from losing its leadership.
            "--heartbeat-interval", "250", "--election-timeout", "2500",
            "--logger", "zap", "--log-level", "warn",
            "--quota-backend-bytes", (64L << 20).ToString(CultureInfo.InvariantCulture),
        ];
    }
}
