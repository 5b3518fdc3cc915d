using System.Diagnostics;
using System.Net.Sockets;

namespace Grpc.Backup.Containers.Tests;

/// <summary>
/// The provider's worker runs as the container's root, which other containers' processes often share: inside it, it
/// must see only its own processes, have no network but a loopback, be unable to signal a process of the container's
/// root uid on the host, run with no_new_privs and in a cgroup of its own that is gone when it ends.
/// </summary>
public sealed class WorkerSandboxTests
{
    [Fact]
    public async Task The_worker_sees_only_its_own_pids_no_network_and_cannot_signal_a_host_process()
    {
        RequiredTools.Ensure();
        using var dir = new TestDirectory();
        string rootfs = dir.CreateDirectory("rootfs");
        Host.Run("chown", "-R", "-h", "100000:100000", rootfs);
        // A host process running as the container's root uid: without a pid namespace the worker could kill it.
        using Process victim = Process.Start(new ProcessStartInfo("setpriv", ["--reuid", "100000", "--regid", "100000", "--clear-groups", "sleep", "600"]))!;
        string worker = dir.Combine("worker.sh");
        File.WriteAllText(worker, """
            #!/bin/sh
            echo "pids: $(ls /proc | grep -E '^[0-9]+$' | tr '\n' ' ')"
            echo "net: $(tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d ' ' | tr '\n' ' ')"
            if kill -0 "$VICTIM" 2>/dev/null; then echo "signal: reached"; else echo "signal: refused"; fi
            echo "nnp: $(grep NoNewPrivs /proc/self/status | tr -d '\t ')"
            echo "cgroup: $(grep '^0::' /proc/self/cgroup)"
            echo "uid: $(id -u)"
            """.Replace("\r", "", StringComparison.Ordinal));
        Host.Chmod(worker, "0755");
        try
        {
            await using ContainerBackupView view = await ContainerBackupView.CreateAsync(new ContainerBackupOptions
            {
                IdMap = IdMap.CreateDefault(),
                RootFileSystem = rootfs,
                TemporaryDirectory = dir.CreateDirectory("work"),
            });
            using var pair = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
            var lines = new List<string>();
            var problems = new List<string>();
            ContainerWorkerProcess process = ContainerWorkerProcess.Start(view, [worker], new Dictionary<string, string> { ["VICTIM"] = victim.Id.ToString(System.Globalization.CultureInfo.InvariantCulture) },
                pair.SafeHandle, line => { lock (lines) { lines.Add(line); } }, line => { lock (problems) { problems.Add(line); } });
            string? cgroup = process.CgroupPath;
            int status;
            await using (process)
            {
                status = await process.Completion.WaitAsync(TimeSpan.FromSeconds(120));
            }
            Assert.True(status == 0, $"worker exit {status}: {string.Join(" | ", problems)}");
            string Line(string key) => lines.Single(l => l.StartsWith(key + ":", StringComparison.Ordinal))[(key.Length + 1)..].Trim();

            int[] pids = Line("pids").Split(' ', StringSplitOptions.RemoveEmptyEntries).Select(int.Parse).ToArray();
            Assert.Contains(1, pids);
            Assert.DoesNotContain(victim.Id, pids);
            Assert.DoesNotContain(Environment.ProcessId, pids);
            Assert.True(pids.Length < 10, $"the worker sees pids {Line("pids")}");
            Assert.Equal("lo", Line("net"));
            Assert.Equal("refused", Line("signal"));
            Assert.Equal("NoNewPrivs:1", Line("nnp"));
            Assert.Equal("0", Line("uid"));
            Assert.False(victim.HasExited);
            if (cgroup is not null)
            {
                Assert.EndsWith(Path.GetFileName(cgroup), Line("cgroup"), StringComparison.Ordinal);
                Assert.False(Directory.Exists(cgroup), "the worker's cgroup was left behind");
            }
        }
        finally
        {
            victim.Kill();
            await victim.WaitForExitAsync();
        }
    }
}
