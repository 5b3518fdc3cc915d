using System.Diagnostics;
using System.Runtime.InteropServices;
using System.Security.Cryptography;
using Grpc.Backup.DemoGuest;
using Grpc.Backup.Qemu;
using Microsoft.Win32.SafeHandles;

// grpc-backup-demo-guest --dir DIR [--guest-id 100] [--disk NAME:raw|qcow2:MIB ...] [--write-interval-ms 2] [--fill PERCENT]
//                        [--no-writer] [--hang-on-freeze] [--no-backup NAME ...]
// Runs until SIGTERM or SIGINT; then quits qemu-storage-daemon cleanly so qcow2 bitmaps are stored.
string dir = Path.GetFullPath(Argument("--dir") ?? throw new ArgumentException("--dir DIR is required"));
string guestId = Argument("--guest-id") ?? "100";
var diskArgs = Arguments("--disk").ToList();
if (diskArgs.Count == 0)
{
    diskArgs = ["drive-virtio0:qcow2:64", "drive-virtio1:raw:64"];
}
var disks = diskArgs.Select(DemoDisk.Parse).ToList();
var excluded = Arguments("--no-backup").ToHashSet(StringComparer.Ordinal);
double fill = double.Parse(Argument("--fill") ?? "60", System.Globalization.CultureInfo.InvariantCulture) / 100;
var interval = TimeSpan.FromMilliseconds(double.Parse(Argument("--write-interval-ms") ?? "2", System.Globalization.CultureInfo.InvariantCulture));

Directory.CreateDirectory(dir);
Directory.CreateDirectory(Path.Combine(dir, "guest"));
Directory.CreateDirectory(Path.Combine(dir, "inventory"));
// A restart of the guest (same --dir) keeps its disks, and with them the qcow2 disk's persistent bitmaps.
bool restarted = disks.All(d => File.Exists(Path.Combine(dir, d.FileName)));
foreach (DemoDisk disk in disks.Where(_ => !restarted))
{
    Run("qemu-img", "create", "-q", "-f", disk.Format, Path.Combine(dir, disk.FileName), disk.SizeBytes.ToString(System.Globalization.CultureInfo.InvariantCulture));
    if (disk.Format == "raw")
    {
        // A raw image is filled directly before QEMU opens it: the same data, without a sync per chunk through FUSE.
        using var image = File.OpenHandle(Path.Combine(dir, disk.FileName), FileMode.Open, FileAccess.Write);
        Fill(image, disk);
    }
}
string mounts = File.ReadAllText("/proc/self/mounts");
foreach (DemoDisk disk in disks)
{
    string mountpoint = Path.Combine(dir, "guest", disk.DeviceName);
    // A FUSE export whose qemu-storage-daemon was killed stays mounted but dead; detach it before reusing the path.
    if (mounts.Contains($" {mountpoint} ", StringComparison.Ordinal))
    {
        Run("umount", "-l", mountpoint);
    }
    File.WriteAllBytes(mountpoint, []);
}
foreach (string stale in (string[])["qmp.sock", "agent.sock", "qsd.pid", "ready"])
{
    File.Delete(Path.Combine(dir, stale));
}

var qsdArgs = new List<string>
{
    "--chardev", $"socket,id=qmp0,path={dir}/qmp.sock,server=on,wait=off", "--monitor", "chardev=qmp0",
    "--pidfile", $"{dir}/qsd.pid",
};
foreach (DemoDisk disk in disks)
{
    qsdArgs.AddRange([
        "--object", $"throttle-group,id={disk.ThrottleGroup}",
        "--blockdev", $"driver=file,node-name=file{disk.Index},filename={dir}/{disk.FileName},discard=unmap",
        "--blockdev", $"driver={disk.Format},node-name={disk.FormatNode},file=file{disk.Index},discard=unmap",
        "--blockdev", $"driver=throttle,node-name={disk.FilterNode},throttle-group={disk.ThrottleGroup},file={disk.FormatNode}",
        // The guest's view of the disk: its writes go through the filter node, where copy-before-write is inserted.
        "--export", $"type=fuse,id=guest{disk.Index},node-name={disk.FilterNode},mountpoint={dir}/guest/{disk.DeviceName},writable=on",
    ]);
}
using var qsd = Process.Start(new ProcessStartInfo("qemu-storage-daemon", qsdArgs) { RedirectStandardError = false })!;
await WaitForAsync(() => File.Exists($"{dir}/qmp.sock") && File.Exists($"{dir}/qsd.pid"), qsd);

var handles = new List<(string Name, SafeFileHandle Handle, long Size)>();
foreach (DemoDisk disk in disks)
{
    var handle = File.OpenHandle(Path.Combine(dir, "guest", disk.DeviceName), FileMode.Open, FileAccess.ReadWrite,
        FileShare.ReadWrite, FileOptions.WriteThrough);
    handles.Add((disk.DeviceName, handle, disk.SizeBytes));
    if (disk.Format != "raw" && !restarted)
    {
        Fill(handle, disk);
    }
}

string config = $"""
    # Demo guest {guestId}, written by grpc-backup-demo-guest.
    type: vm
    name: demo-{guestId}
    qmp: {dir}/qmp.sock
    {(args.Contains("--no-agent") ? "" : $"agent: {dir}/agent.sock")}

    """ + string.Concat(disks.Select(d =>
        $"disk: {d.DeviceName} file={dir}/{d.FileName} format={d.Format} node={d.FormatNode} filter={d.FilterNode} throttle-group={d.ThrottleGroup} size={d.SizeBytes}"
        + (excluded.Contains(d.DeviceName) ? " backup=no\n" : "\n")))
    + "memory: 64\ncores: 1\n";
File.WriteAllText(Path.Combine(dir, "inventory", guestId + ".conf"), config);

using var stop = new CancellationTokenSource();
using var sigterm = PosixSignalRegistration.Create(PosixSignal.SIGTERM, c => { c.Cancel = true; stop.Cancel(); });
using var sigint = PosixSignalRegistration.Create(PosixSignal.SIGINT, c => { c.Cancel = true; stop.Cancel(); });
using var writer = new GuestWriter(handles, interval);
using var agent = new GuestAgentServer($"{dir}/agent.sock", writer, $"{dir}/instants.jsonl", args.Contains("--hang-on-freeze"));
// --no-agent: a guest without an agent (the benchmarks' guests: a freeze would hash whole disks inside the timing).
Task agentTask = args.Contains("--no-agent") ? Task.Delay(Timeout.Infinite, stop.Token) : agent.RunAsync(stop.Token);
Task writerTask = args.Contains("--no-writer") ? Task.Delay(Timeout.Infinite, stop.Token) : writer.RunAsync(stop.Token);
File.WriteAllText(Path.Combine(dir, "ready"), $"{Environment.ProcessId}\n");

try
{
    await Task.WhenAny(Task.Delay(Timeout.Infinite, stop.Token), agentTask, writerTask, qsd.WaitForExitAsync());
}
catch (OperationCanceledException)
{
}
stop.Cancel();
await Task.WhenAll(agentTask, writerTask).ContinueWith(_ => { }, TaskScheduler.Default);
foreach (var (_, handle, _) in handles)
{
    handle.Dispose();
}
if (!qsd.HasExited)
{
    // QEMU's monitor serves one client at a time: the guest connects only now, to quit, so the host can use QMP.
    // A clean quit stores the qcow2 bitmaps; whatever goes wrong, qemu-storage-daemon must not outlive the guest.
    try
    {
        using var quitTimeout = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        await using var qmp = await QmpClient.ConnectAsync($"{dir}/qmp.sock", quitTimeout.Token);
        await qmp.ExecuteAsync("quit", cancellationToken: quitTimeout.Token);
    }
    catch (Exception e) when (e is QmpException or IOException or System.Net.Sockets.SocketException or OperationCanceledException)
    {
        Console.Error.WriteLine($"demo guest: quit over QMP failed ({e.Message}); killing qemu-storage-daemon");
        qsd.Kill();
    }
    if (!qsd.WaitForExit(10_000))
    {
        qsd.Kill();
        qsd.WaitForExit();
    }
}
File.Delete(Path.Combine(dir, "agent.sock"));
File.Delete(Path.Combine(dir, "qmp.sock"));
File.Delete(Path.Combine(dir, "ready"));
Console.WriteLine($"demo guest stopped after {writer.Writes} writes");
return 0;

string? Argument(string name)
{
    int i = Array.IndexOf(args, name);
    return i >= 0 && i + 1 < args.Length ? args[i + 1] : null;
}

IEnumerable<string> Arguments(string name)
{
    for (int i = 0; i < args.Length - 1; i++)
    {
        if (args[i] == name && !args[i + 1].StartsWith("--", StringComparison.Ordinal))
        {
            yield return args[i + 1];
        }
    }
}

// Generated data: --fill percent (60 by default) of the 1 MiB chunks random, the rest left as holes.
void Fill(SafeFileHandle handle, DemoDisk disk)
{
    byte[] chunk = new byte[1024 * 1024];
    var seeded = new Random(disk.Index + 1);
    for (long offset = 0; offset < disk.SizeBytes; offset += chunk.Length)
    {
        if (seeded.NextDouble() < fill)
        {
            RandomNumberGenerator.Fill(chunk);
            RandomAccess.Write(handle, chunk, offset);
        }
    }
}

static void Run(string file, params string[] arguments)
{
    using var process = Process.Start(new ProcessStartInfo(file, arguments) { RedirectStandardError = true })!;
    string error = process.StandardError.ReadToEnd();
    process.WaitForExit();
    if (process.ExitCode != 0)
    {
        throw new InvalidOperationException($"{file} failed: {error}");
    }
}

static async Task WaitForAsync(Func<bool> condition, Process process)
{
    for (int i = 0; i < 200 && !condition(); i++)
    {
        if (process.HasExited)
        {
            throw new InvalidOperationException($"qemu-storage-daemon exited with {process.ExitCode}");
        }
        await Task.Delay(50);
    }
    if (!condition())
    {
        throw new TimeoutException("qemu-storage-daemon did not come up");
    }
}
