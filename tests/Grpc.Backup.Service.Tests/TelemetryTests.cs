using System.Net;
using System.Text.RegularExpressions;
using Grpc.Backup.Orchestrator.Inventory;
using Grpc.Backup.Service.Internal.Configuration;
using Grpc.Backup.Service.Tests.Infrastructure;

namespace Grpc.Backup.Service.Tests;

/// <summary>
/// Observability end to end: grpc-backupd with a Prometheus listener and an OTLP collector (a real HTTP server)
/// backs up a real QEMU demo guest into the directory provider. The scrape shows the backup and per-RPC latencies;
/// the exported trace holds the job, the guest and every provider RPC, linked parent to child.
/// </summary>
public sealed class TelemetryTests
{
    [Fact]
    public async Task One_backup_shows_in_the_metrics_and_its_trace_holds_every_provider_rpc()
    {
        await using var service = ServiceProcess.Create();
        await using var guest = await DemoGuestProcess.StartAsync(service.Root.File("guest"));
        await using var provider = await DirectoryProviderProcess.StartAsync();
        using var collector = HttpReceiver.Start();
        int metricsPort = LoopbackPorts.Free();
        service.AddGuest(guest);
        service.AddDirectoryStorage("dir", provider);
        service.WriteConfig("host.conf", $"metrics-listen: 127.0.0.1:{metricsPort}\notlp-endpoint: {collector.Url}\n");
        service.WriteConfig("jobs/daily.conf", $"storage: dir\nguests: 100\nfleecing-dir: {service.FleecingDirectory}\n");
        await service.StartAsync();

        var (exit, stdout, stderr) = await service.CliAsync("backup", "--job", "daily");
        Assert.True(exit == 0, $"{stdout}\n{stderr}\n{service.Log}");

        using var http = new HttpClient();
        string scrape = await http.GetStringAsync($"http://127.0.0.1:{metricsPort}/metrics");
        Assert.Matches(new Regex(@"^grpc_backup_guest_backups_total\{[^}]*outcome=""succeeded""[^}]*\} 1( |$)", RegexOptions.Multiline), scrape);
        Assert.Matches(new Regex(@"^grpc_backup_jobs_total\{[^}]*outcome=""succeeded""[^}]*provider=""org.grpcbackup.directory""[^}]*\} 1( |$)", RegexOptions.Multiline), scrape);
        // The demo guest's disks are read whole by a first backup: the counter is at least a disk's size, not zero.
        Match read = Regex.Match(scrape, @"^grpc_backup_backup_read_bytes_total\{[^}]*\} (\d+)", RegexOptions.Multiline);
        Assert.True(read.Success && long.Parse(read.Groups[1].Value) >= 1 << 20, scrape);
        Assert.Matches(new Regex(@"^rpc_client_call_duration_seconds_count\{[^}]*rpc_grpc_status_code=""0""[^}]*rpc_method=""BackupVm""[^}]*\} 1( |$)",
            RegexOptions.Multiline), scrape);
        // The service's own process figures, as an operator watches them for leaks.
        Match fds = Regex.Match(scrape, @"^grpc_backup_process_open_fds(\{[^}]*\})? (\d+)", RegexOptions.Multiline);
        Assert.True(fds.Success, scrape);
        int actualFds = Directory.GetFileSystemEntries($"/proc/{service.Process!.Id}/fd").Length;
        Assert.InRange(int.Parse(fds.Groups[2].Value, System.Globalization.CultureInfo.InvariantCulture), actualFds - 20, actualFds + 20);
        foreach (string figure in (string[])["grpc_backup_process_resident_memory_bytes", "grpc_backup_process_threads", "grpc_backup_process_gc_heap_bytes"])
        {
            Assert.Matches(new Regex($@"^{figure}(\{{[^}}]*\}})? [1-9]", RegexOptions.Multiline), scrape);
        }
        // The metrics listener serves the scrape and nothing else: not the management API, not other paths.
        Assert.Equal(HttpStatusCode.NotFound, (await http.GetAsync($"http://127.0.0.1:{metricsPort}/")).StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, (await http.PostAsync($"http://127.0.0.1:{metricsPort}/backup.host.v1.Management/GetStatus",
            new ByteArrayContent([0, 0, 0, 0, 0]))).StatusCode);

        // The batch exporter sends every few seconds; the job's span is the last to end.
        await collector.WaitForAsync("/v1/traces", TimeSpan.FromSeconds(90), r => OtlpSpans.Read(r.Body).Any(s => s.Name == "backup job"));
        await service.StopAsync();
        var spans = collector.At("/v1/traces").SelectMany(r => OtlpSpans.Read(r.Body)).ToList();
        ExportedSpan job = Assert.Single(spans, s => s.Name == "backup job");
        ExportedSpan guestSpan = Assert.Single(spans, s => s.Name == "backup guest");
        Assert.Equal((job.TraceId, job.SpanId), (guestSpan.TraceId, guestSpan.ParentSpanId));
        Assert.Equal("", job.ParentSpanId);
        var inTrace = spans.Where(s => s.TraceId == job.TraceId).ToList();
        string[] expected =
        [
            "backup.provider.v1.Identity/GetProviderInfo", "backup.provider.v1.Backup/JobInit", "backup.provider.v1.Backup/BackupInit",
            "backup.provider.v1.Backup/BackupVm", "backup.provider.v1.Backup/BackupHandleLogFile", "backup.provider.v1.Backup/BackupCleanup",
            "backup.provider.v1.Backup/JobCleanup",
        ];
        foreach (string rpc in expected)
        {
            Assert.Contains(inTrace, s => s.Name == rpc);
        }
        // Every provider RPC hangs off the job or the guest, none off another RPC: calls are siblings, not nested.
        var rpcs = inTrace.Where(s => s.Name.StartsWith("backup.provider.v1.", StringComparison.Ordinal)).ToList();
        Assert.All(rpcs, s => Assert.Contains(s.ParentSpanId, new[] { job.SpanId, guestSpan.SpanId }));
        Assert.Equal(guestSpan.SpanId, rpcs.Single(s => s.Name == "backup.provider.v1.Backup/BackupVm").ParentSpanId);
        Assert.Equal(job.SpanId, rpcs.Single(s => s.Name == "backup.provider.v1.Backup/JobInit").ParentSpanId);
    }

    [Theory]
    [InlineData("metrics-listen: 0.0.0.0:9464", "not a loopback address")]
    [InlineData("metrics-listen: 192.168.1.10:9464", "not a loopback address")]
    [InlineData("metrics-listen: 127.0.0.1", "is not ADDRESS:PORT")]
    [InlineData("metrics-listen: unix:relative.sock", "is not an absolute path")]
    [InlineData("otlp-endpoint: ftp://collector:4318", "expected an http:// or https:// URL")]
    public void An_exposed_or_malformed_telemetry_address_is_refused_with_its_line(string line, string reason)
    {
        var e = Assert.Throws<ConfigException>(() => HostSettings.Parse("/etc/grpc-backup/host.conf", line + "\n", "/var/lib/grpc-backup"));
        Assert.Contains(reason, e.Message, StringComparison.Ordinal);
        Assert.Contains("host.conf", e.Message, StringComparison.Ordinal);
    }
}
