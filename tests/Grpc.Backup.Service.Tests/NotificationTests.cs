using System.Text;
using System.Text.Json;
using Grpc.Backup.Service.Tests.Infrastructure;

namespace Grpc.Backup.Service.Tests;

/// <summary>
/// Job notifications end to end through grpc-backupd: a webhook (a real HTTP server on 127.0.0.1) and a sendmail
/// program (a capturing script standing in for the MTA, invoked exactly as /usr/sbin/sendmail would be).
/// </summary>
public sealed class NotificationTests
{
    private const string Secret = "tok3n-SHOULD-never-BE-logged";

    [Fact]
    public async Task A_job_end_reaches_webhook_and_mail_and_the_url_secret_stays_out_of_every_log()
    {
        await using var service = ServiceProcess.Create();
        await using var guest = await DemoGuestProcess.StartAsync(service.Root.File("guest"));
        await using var provider = await DirectoryProviderProcess.StartAsync();
        using var receiver = HttpReceiver.Start();
        // The first attempt fails as an overloaded receiver would; the service retries.
        receiver.AnswerNext(503);
        string urlFile = SecretFile(service, "hook-url", $"{receiver.Url}hook?token={Secret}\n");
        string headerFile = SecretFile(service, "hook-headers", $"# sent with every report\nAuthorization: Bearer {Secret}\n");
        string mailLog = service.Root.File("mail.log");
        string sendmail = Sendmail(service, mailLog);
        Directory.CreateDirectory(Path.Combine(service.ConfigDirectory, "notifications"));
        service.WriteConfig("notifications/ops.conf", $"type: webhook\nurl-file: {urlFile}\nheader-file: {headerFile}\ntimeout: 5\n");
        service.WriteConfig("notifications/mail.conf", $"type: sendmail\nmailto: root@localhost ops@example.com\nfrom: backup@pve1\nsendmail: {sendmail}\n");
        service.AddGuest(guest);
        service.AddDirectoryStorage("dir", provider);
        service.WriteConfig("jobs/daily.conf", $"storage: dir\nguests: 100\nfleecing-dir: {service.FleecingDirectory}\nnotify: ops mail\n");
        await service.StartAsync();

        JsonElement reply = await service.CliJsonAsync("backup", "--job", "daily");
        string taskId = reply.GetProperty("taskId").GetString()!;
        ReceivedRequest hook = await receiver.WaitForAsync("/hook", TimeSpan.FromSeconds(60), r => r.Method == "POST");
        Assert.Equal(2, receiver.At("/hook").Count);
        Assert.Equal($"Bearer {Secret}", hook.Headers["Authorization"]);
        Assert.StartsWith("application/json", hook.Headers["Content-Type"], StringComparison.Ordinal);
        using JsonDocument report = JsonDocument.Parse(hook.Body);
        JsonElement root = report.RootElement;
        Assert.Equal(("job-end", "daily", "succeeded", "dir", taskId), (root.GetProperty("event").GetString(), root.GetProperty("job").GetString(),
            root.GetProperty("state").GetString(), root.GetProperty("storage").GetString(), root.GetProperty("taskId").GetString()));
        JsonElement guestReport = Assert.Single(root.GetProperty("guests").EnumerateArray());
        Assert.Equal("succeeded", guestReport.GetProperty("state").GetString());
        JsonElement listed = await service.CliJsonAsync("list", "--storage", "dir", "--refresh");
        Assert.Contains(guestReport.GetProperty("archiveName").GetString(),
            listed.GetProperty("backups").EnumerateArray().Select(b => b.GetProperty("archiveName").GetString()));
        Assert.True(guestReport.GetProperty("bytesRead").GetUInt64() > 0);

        string mail = await WaitForFileAsync(mailLog);
        Assert.StartsWith("args: -t -oi\n", mail, StringComparison.Ordinal);
        Assert.Contains("\nTo: root@localhost, ops@example.com\n", mail, StringComparison.Ordinal);
        Assert.Contains("\nFrom: backup@pve1\n", mail, StringComparison.Ordinal);
        Assert.Contains("Subject: grpc-backup ", mail, StringComparison.Ordinal);
        Assert.Contains("job daily succeeded", mail, StringComparison.Ordinal);
        Assert.Contains(guestReport.GetProperty("archiveName").GetString()!, mail, StringComparison.Ordinal);

        var (_, taskLog, _) = await service.CliAsync("watch", taskId);
        Assert.Contains("notified ops", taskLog, StringComparison.Ordinal);
        Assert.Contains("notified mail", taskLog, StringComparison.Ordinal);
        await service.StopAsync();
        Assert.DoesNotContain(Secret, service.Log, StringComparison.Ordinal);
        Assert.DoesNotContain(Secret, taskLog, StringComparison.Ordinal);
        foreach (string file in Directory.EnumerateFiles(service.StateDirectory, "*", SearchOption.AllDirectories))
        {
            if (!file.EndsWith(".db", StringComparison.Ordinal) && !file.Contains(".db-", StringComparison.Ordinal))
            {
                Assert.DoesNotContain(Secret, File.ReadAllText(file), StringComparison.Ordinal);
            }
        }
    }

    [Fact]
    public async Task A_failed_JobInit_is_reported_at_once_and_only_once_and_failure_only_targets_skip_successes()
    {
        await using var service = ServiceProcess.Create();
        using var receiver = HttpReceiver.Start();
        string mailLog = service.Root.File("mail.log");
        Directory.CreateDirectory(Path.Combine(service.ConfigDirectory, "notifications"));
        service.WriteConfig("notifications/ops.conf", $"type: webhook\nurl: {receiver.Url}hook\n");
        service.WriteConfig("notifications/mail.conf", $"type: sendmail\nmailto: root@localhost\nsendmail: {Sendmail(service, mailLog)}\n");
        service.WriteConfig("guests/100.conf", "type: vm\nname: web\nqmp: /nonexistent/100.qmp\ndisk: drive-virtio0 file=/nonexistent.qcow2 format=qcow2 node=fmt0 filter=top0\n");
        // The provider's socket does not exist: the run fails before JobInit completes.
        service.WriteConfig("storages/gone.conf", $"endpoint: unix:{service.Root.File("nothing.sock")}\n");
        service.WriteConfig("jobs/broken.conf", "storage: gone\nguests: 100\nnotify: ops mail\nnotify-on: failure\n");
        await service.StartAsync();

        var (exit, _, _) = await service.CliAsync("backup", "--job", "broken");
        Assert.Equal(1, exit);
        ReceivedRequest hook = await receiver.WaitForAsync("/hook", TimeSpan.FromSeconds(30));
        using JsonDocument report = JsonDocument.Parse(hook.Body);
        Assert.Equal("job-init-failed", report.RootElement.GetProperty("event").GetString());
        Assert.Equal("failed", report.RootElement.GetProperty("state").GetString());
        Assert.NotEqual("", report.RootElement.GetProperty("error").GetString());
        string mail = await WaitForFileAsync(mailLog);
        Assert.Contains("could not start on gone", mail, StringComparison.Ordinal);
        Assert.Contains("X-Grpc-Backup-Event: job-init-failed", mail, StringComparison.Ordinal);
        // The end of the same run is not reported a second time: after a graceful stop nothing is left to send.
        await service.StopAsync();
        Assert.Single(receiver.At("/hook"));
    }

    [Theory]
    [InlineData("type: webhook\nurl: ftp://example.com/x\n", "expected an http:// or https:// URL")]
    [InlineData("type: webhook\n", "exactly one of 'url:' or 'url-file:'")]
    [InlineData("type: sendmail\nmailto: root@localhost\nBcc: x@example.com\n", "unknown key 'Bcc'")]
    [InlineData("type: sendmail\nmailto: \"Evil\\nBcc: x@example.com\" <root@localhost>\n", "is not a plain mail address")]
    [InlineData("type: pager\n", "type 'pager' is not known")]
    public async Task A_bad_notification_target_stops_the_service_with_its_file_and_line(string text, string reason)
    {
        await using var service = ServiceProcess.Create();
        Directory.CreateDirectory(Path.Combine(service.ConfigDirectory, "notifications"));
        service.WriteConfig("notifications/bad.conf", text);
        var (exit, _, stderr) = await ChildProcess.RunAsync("dotnet", [ServiceProcess.ServiceDll, .. service.Arguments, "--check-config"]);
        Assert.Equal(78, exit);
        Assert.Contains("notifications/bad.conf", stderr, StringComparison.Ordinal);
        Assert.Contains(reason, stderr, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_secret_url_file_readable_by_others_is_refused()
    {
        await using var service = ServiceProcess.Create();
        string urlFile = service.Root.File("hook-url");
        File.WriteAllText(urlFile, "https://example.com/hook?token=x\n");
        File.SetUnixFileMode(urlFile, (UnixFileMode)0b110_100_100);
        Directory.CreateDirectory(Path.Combine(service.ConfigDirectory, "notifications"));
        service.WriteConfig("notifications/ops.conf", $"type: webhook\nurl-file: {urlFile}\n");
        var (exit, _, stderr) = await ChildProcess.RunAsync("dotnet", [ServiceProcess.ServiceDll, .. service.Arguments, "--check-config"]);
        Assert.Equal(78, exit);
        Assert.Contains("readable by group or others", stderr, StringComparison.Ordinal);
        Assert.DoesNotContain("token=x", stderr, StringComparison.Ordinal);
    }

    private static string SecretFile(ServiceProcess service, string name, string text)
    {
        string path = service.Root.File(name);
        File.WriteAllText(path, text);
        File.SetUnixFileMode(path, UnixFileMode.UserRead | UnixFileMode.UserWrite);
        return path;
    }

    /// <summary>Records its arguments and the message it is given on stdin, as an MTA's sendmail would accept it.</summary>
    private static string Sendmail(ServiceProcess service, string logPath)
    {
        string path = service.Root.File("sendmail");
        File.WriteAllText(path, $"#!/bin/sh\n{{ echo \"args: $*\"; cat; }} > {logPath}.tmp && mv {logPath}.tmp {logPath}\n");
        File.SetUnixFileMode(path, (UnixFileMode)0b111_101_101);
        return path;
    }

    private static async Task<string> WaitForFileAsync(string path)
    {
        // A bound for a hang, not for speed: the file is written at a backup's end.
        var deadline = DateTime.UtcNow + TimeSpan.FromMinutes(5);
        while (!File.Exists(path))
        {
            Assert.True(DateTime.UtcNow < deadline, $"{path} was not written");
            await Task.Delay(100);
        }
        return Encoding.UTF8.GetString(await File.ReadAllBytesAsync(path));
    }
}
