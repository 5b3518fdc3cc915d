using System.Globalization;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using Grpc.Backup.Service.Tests.Infrastructure;
using static Grpc.Backup.Service.Tests.ScheduledJobTests;

namespace Grpc.Backup.Service.Tests;

/// <summary>
/// <c>grpc-backup restore --live</c> through grpc-backupd: a demo guest backed up into the directory provider, then
/// restored live by a guest start program that runs qemu-storage-daemon on the disks it is handed (the qcow2 over the
/// guarded export), as a hypervisor's starter would run QEMU. A cancelled restore leaves the documented state; a
/// completed one holds the backup's instant byte for byte and names no backing, and the task reported its progress.
/// </summary>
public sealed partial class LiveRestoreTests
{
    private static readonly TimeSpan Bound = TimeSpan.FromMinutes(3);

    [Fact]
    public async Task A_live_restore_through_the_service_reports_progress_ends_independent_with_the_backups_data_and_cancel_leaves_overlays_naming_their_backing()
    {
        await using var service = ServiceProcess.Create();
        await using var guest = await DemoGuestProcess.StartAsync(service.Root.File("guest"));
        await using var provider = await DirectoryProviderProcess.StartAsync();
        service.AddGuest(guest);
        service.AddDirectoryStorage("dir", provider);
        service.WriteConfig("jobs/daily.conf", $"storage: dir\nguests: 100\nfleecing-dir: {service.FleecingDirectory}\n");
        await service.StartAsync();
        var (backupExit, backupOut, backupErr) = await service.CliAsync("backup", "--job", "daily");
        Assert.True(backupExit == 0, backupOut + backupErr);
        IReadOnlyDictionary<string, string> instant = guest.LastInstant();
        string archive = Backups(await service.CliJsonAsync("list", "--storage", "dir")).Single().GetProperty("archiveName").GetString()!;
        string vms = service.Root.File("vms");
        Directory.CreateDirectory(vms);
        string starter = WriteStartProgram(service.Root.File("start-guest"), vms);
        try
        {
            // Cancelled while streaming (1 MiB/s: far from done): the task ends CANCELLED, the guards are gone, and each
            // qcow2 still names its export as backing, so it cannot be opened alone and read as zeros.
            string cancelled = service.Root.File("cancelled");
            var (startExit, taskId, startErr) = await service.CliAsync("restore", "--storage", "dir", "--archive", archive, "--target", cancelled,
                "--live", "--start-guest", starter, "--bwlimit", (1 << 20).ToString(CultureInfo.InvariantCulture), "--no-wait");
            Assert.True(startExit == 0, startErr);
            await using (var watch = ChildProcess.Start("dotnet", [ServiceProcess.CliDll, "watch", taskId.Trim(), "--socket", service.SocketPath]))
            {
                var deadline = DateTime.UtcNow + Bound;
                while (!watch.StandardOutput.Contains("; streaming", StringComparison.Ordinal))
                {
                    Assert.True(!watch.HasExited && DateTime.UtcNow < deadline, watch.StandardOutput + watch.StandardError + service.Log);
                    await Task.Delay(100);
                }
                Assert.Equal(0, (await service.CliAsync("cancel", taskId.Trim())).ExitCode);
                Assert.Equal(6, await watch.WaitForExitAsync(Bound));
                Assert.Contains("cancelled: the VM is paused", watch.StandardOutput, StringComparison.Ordinal);
            }
            foreach (JsonNode disk in Described(vms, "cancelled"))
            {
                JsonNode info = await InfoAsync((string)disk["image"]!);
                Assert.StartsWith("json:{\"driver\":\"nbd\"", (string?)info["backing-filename"], StringComparison.Ordinal);
                string guardSocket = (string)disk["blockdev"]!["backing"]!["server"]!["path"]!;
                Assert.False(File.Exists(guardSocket), $"{guardSocket} is left");
            }

            // Completed: progress reported while streaming, every disk the backup's instant with no backing left.
            string target = service.Root.File("restored");
            var (exit, stdout, stderr) = await service.CliAsync("restore", "--storage", "dir", "--archive", archive, "--target", target,
                "--live", "--start-guest", starter, "--bwlimit", (32 << 20).ToString(CultureInfo.InvariantCulture));
            Assert.True(exit == 0, stdout + stderr + service.Log);
            var streamed = Streamed().Matches(stdout).Select(m => (Done: double.Parse(m.Groups[1].Value, CultureInfo.InvariantCulture),
                Total: double.Parse(m.Groups[2].Value, CultureInfo.InvariantCulture))).ToList();
            Assert.True(streamed.Any(s => s.Done > 0 && s.Done < s.Total), $"no progress while streaming:\n{stdout}");
            Assert.True(streamed[^1].Done == streamed[^1].Total, stdout);
            Assert.Contains("every disk is independent of the provider", stdout, StringComparison.Ordinal);
            // The VM shut down cleanly (qemu-storage-daemon flushes its qcow2 metadata as a VM's QEMU does), then each disk
            // compared.
            await StopVmAsync(Path.Combine(vms, "restored"));
            JsonNode[] disks = Described(vms, "restored");
            Assert.Equal(instant.Keys.Order(StringComparer.Ordinal), disks.Select(d => (string)d["device"]!).Order(StringComparer.Ordinal));
            foreach (JsonNode disk in disks)
            {
                string image = (string)disk["image"]!;
                Assert.Null((await InfoAsync(image))["backing-filename"]);
                string raw = service.Root.File((string)disk["device"]! + ".raw");
                await ChildProcess.RunCheckedAsync("qemu-img", ["convert", "-U", "-f", "qcow2", "-O", "raw", image, raw]);
                Assert.True(instant[(string)disk["device"]!] == Checksums.Sha256File(raw), $"{disk["device"]}: the live-restored disk differs from the backup's instant");
            }
        }
        finally
        {
            foreach (string pidFile in Directory.EnumerateFiles(vms, "qsd.pid", SearchOption.AllDirectories))
            {
                await ChildProcess.RunAsync("kill", [File.ReadAllText(pidFile).Trim()]);
            }
        }
    }

    /// <summary>
    /// A guest start program as the contract describes it: the disks' blockdev trees from stdin, a daemonized
    /// qemu-storage-daemon on them (the demo's VM) in <c>VMS/TARGET-NAME/</c>, its QMP socket printed last.
    /// </summary>
    private static string WriteStartProgram(string path, string vms)
    {
        File.WriteAllText(path, $$"""
            #!/usr/bin/python3
            import json, os, subprocess, sys
            description = json.load(sys.stdin)
            run = os.path.join("{{vms}}", os.path.basename(sys.argv[1]))
            os.mkdir(run)
            with open(os.path.join(run, "described.json"), "w") as f:
                json.dump(description, f)
            arguments = ["qemu-storage-daemon", "--daemonize", "--pidfile", os.path.join(run, "qsd.pid"),
                "--chardev", "socket,id=m,path=" + os.path.join(run, "qmp.sock") + ",server=on,wait=off", "--monitor", "chardev=m"]
            for disk in description["disks"]:
                arguments += ["--blockdev", json.dumps(disk["blockdev"])]
            with open(os.path.join(run, "qsd.log"), "w") as log:
                subprocess.run(arguments, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=log, check=True)
            print("qemu-storage-daemon started")
            print(os.path.join(run, "qmp.sock"))
            """.Replace("\r", "", StringComparison.Ordinal));
        File.SetUnixFileMode(path, (UnixFileMode)0b111_101_101);
        return path;
    }

    /// <summary>SIGTERM to the daemonized qemu-storage-daemon of <paramref name="run"/>, then waits until it is gone.</summary>
    private static async Task StopVmAsync(string run)
    {
        string pid = File.ReadAllText(Path.Combine(run, "qsd.pid")).Trim();
        await ChildProcess.RunCheckedAsync("kill", [pid]);
        var deadline = DateTime.UtcNow + Bound;
        while (Directory.Exists($"/proc/{pid}"))
        {
            Assert.True(DateTime.UtcNow < deadline, $"qemu-storage-daemon {pid} did not exit");
            await Task.Delay(50);
        }
    }

    private static JsonNode[] Described(string vms, string target) =>
        [.. JsonNode.Parse(File.ReadAllText(Path.Combine(vms, target, "described.json")))!["disks"]!.AsArray().Select(d => d!)];

    private static async Task<JsonNode> InfoAsync(string image)
    {
        var (exit, stdout, stderr) = await ChildProcess.RunAsync("qemu-img", ["info", "-U", "--output=json", image]);
        Assert.True(exit == 0, stderr);
        return JsonNode.Parse(stdout)!;
    }

    [GeneratedRegex(@"streamed ([0-9.]+) of ([0-9.]+) MiB")]
    private static partial Regex Streamed();
}
