using System.Diagnostics;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json.Nodes;
using Grpc.Backup.Qemu.Tests.Infrastructure;
using Xunit.Abstractions;

namespace Grpc.Backup.Qemu.Tests.SnapshotAccess;

/// <summary>
/// A "running VM" made of qemu-storage-daemon: disk 0 is qcow2, disk 1 raw, each
/// <c>file → format (fmtN) → throttle (topN, group tgN)</c>, filled with random data. The guest is a FUSE
/// export of each <c>topN</c> (file <c>guestN</c>): QEMU has a single NBD server, which snapshot access
/// must be free to start and stop, so the guest's path cannot be NBD. Disposal kills the daemon, lifts
/// its FUSE mounts and deletes the directory, whatever state a test left them in.
/// </summary>
internal sealed class StorageDaemonVm : IAsyncDisposable
{
    public const int DiskCount = 2;
    public const long DiskSize = 32 << 20;
    public const string StorageId = "store1";

    /// <summary>Every node the daemon starts with; teardown must leave exactly these.</summary>
    public static readonly string[] OriginalNodes = ["file0", "fmt0", "top0", "file1", "fmt1", "top1"];

    private readonly StringBuilder _output = new();
    private Process? _daemon;
    private QmpClient? _qmp;

    private StorageDaemonVm(string directory)
    {
        Directory = directory;
        Nbd = new NbdTool(directory);
    }

    public string Directory { get; }

    public NbdTool Nbd { get; }

    public string FleecingDirectory => Path.Combine(Directory, "fleece");

    public string SnapshotSocket => Path.Combine(Directory, "snap.sock");

    public QmpClient Qmp => _qmp ?? throw new InvalidOperationException("The daemon is not running.");

    public string Output
    {
        get
        {
            lock (_output)
            {
                return _output.ToString();
            }
        }
    }

    public static async Task<StorageDaemonVm> StartAsync()
    {
        var vm = new StorageDaemonVm(System.IO.Directory.CreateTempSubdirectory("snapshot-access-").FullName);
        try
        {
            System.IO.Directory.CreateDirectory(vm.FleecingDirectory);
            string seed = Path.Combine(vm.Directory, "seed.raw");
            await File.WriteAllBytesAsync(seed, RandomNumberGenerator.GetBytes((int)DiskSize));
            await QemuProcess.RunToolAsync("qemu-img", "convert", "-q", "-f", "raw", "-O", "qcow2", seed, vm.ImagePath(0));
            await File.WriteAllBytesAsync(vm.ImagePath(1), RandomNumberGenerator.GetBytes((int)DiskSize));
            File.Delete(seed);
            for (int i = 0; i < DiskCount; i++)
            {
                await File.WriteAllBytesAsync(vm.GuestPath(i), []); // FUSE mountpoints are regular files
            }

            await vm.LaunchAsync();
            return vm;
        }
        catch
        {
            await vm.DisposeAsync();
            throw;
        }
    }

    public string ImagePath(int disk) => Path.Combine(Directory, disk == 0 ? "disk0.qcow2" : "disk1.raw");

    public string GuestPath(int disk) => Path.Combine(Directory, $"guest{disk}");

    public static string DeviceName(int disk) => $"disk{disk}";

    public static string BitmapName(int disk) => $"grpc-backup-{StorageId}-{DeviceName(disk)}";

    public static SnapshotDisk Disk(int disk, BitmapRequest bitmap)
        => new(DeviceName(disk), $"fmt{disk}", $"top{disk}", $"tg{disk}", PersistentBitmaps: disk == 0, bitmap);

    public static SnapshotDisk[] Disks(BitmapRequest bitmap) => [Disk(0, bitmap), Disk(1, bitmap)];

    /// <summary>Options for this VM; by default with a no-op quiesce (the tests hold their writers themselves).</summary>
    public SnapshotAccessOptions Options(ITestOutputHelper? output = null, bool quiesce = true, string? fleecingDirectory = null) => new()
    {
        FleecingDirectory = fleecingDirectory ?? FleecingDirectory,
        NbdSocketPath = SnapshotSocket,
        StorageId = StorageId,
        Quiesce = quiesce ? _ => Task.FromResult<IAsyncDisposable?>(new NoQuiesce()) : null,
        Log = output is null ? null : (level, message) => output.WriteLine($"{level}: {message}"),
    };

    /// <summary>Writes through the guest's path and syncs, so the write has reached QEMU when this returns.</summary>
    public async Task GuestWriteAsync(int disk, long offset, int length, byte value)
    {
        await using var stream = OpenGuest(disk);
        stream.Position = offset;
        byte[] data = new byte[length];
        Array.Fill(data, value);
        await stream.WriteAsync(data);
        stream.Flush(flushToDisk: true);
    }

    /// <summary>Writes each range on every disk, as <see cref="GuestWriteAsync"/>.</summary>
    public async Task GuestWriteAllAsync(params (long Offset, long Length)[] writes)
    {
        for (int disk = 0; disk < DiskCount; disk++)
        {
            foreach ((long offset, long length) in writes)
            {
                await GuestWriteAsync(disk, offset, (int)length, 0xa5);
            }
        }
    }

    /// <summary>A first, successful full backup, after which every disk has a stable bitmap recording.</summary>
    public async Task TakeFullBackupAsync(ITestOutputHelper output)
    {
        await using VmSnapshotAccess access = await VmSnapshotAccess.SetupAsync(Qmp, Disks(BitmapRequest.Use), Options(output));
        Assert.All(access.Exports, e => Assert.Equal(BitmapOutcome.New, e.Bitmap));
        await access.TeardownAsync(backupSucceeded: true);
        await access.SettleBitmapsAsync(providerCommitted: true);
    }

    public async Task<string> GuestSha256Async(int disk)
    {
        await using var stream = OpenGuest(disk);
        return Convert.ToHexStringLower(await SHA256.HashDataAsync(stream));
    }

    public FileStream OpenGuest(int disk)
        => new(GuestPath(disk), FileMode.Open, FileAccess.ReadWrite, FileShare.ReadWrite, bufferSize: 0);

    public async Task<JsonArray> QueryAsync(string command) => (await Qmp.ExecuteAsync(command))!.AsArray();

    public async Task<string[]> NodeNamesAsync()
        => [.. (await QmpAsync("query-named-block-nodes", new JsonObject { ["flat"] = true })).AsArray().Select(n => (string)n!["node-name"]!).Order(StringComparer.Ordinal)];

    /// <summary>Named bitmaps of a format node: name → (recording, inconsistent, dirty bytes, granularity).</summary>
    public async Task<Dictionary<string, (bool Recording, bool Inconsistent, long Count, long Granularity)>> BitmapsAsync(int disk)
    {
        JsonNode nodes = await QmpAsync("query-named-block-nodes", new JsonObject { ["flat"] = true });
        JsonNode node = nodes.AsArray().Single(n => (string?)n!["node-name"] == $"fmt{disk}")!;
        return (node["dirty-bitmaps"]?.AsArray() ?? [])
            .Where(b => b!["name"] is not null)
            .ToDictionary(b => (string)b!["name"]!, b => ((bool)b!["recording"]!, (bool?)b["inconsistent"] ?? false, (long)b["count"]!, (long)b["granularity"]!));
    }

    /// <summary>Stops the daemon cleanly (QMP <c>quit</c>): persistent bitmaps are written to the qcow2 image.</summary>
    public async Task QuitAsync()
    {
        Process daemon = _daemon!;
        try
        {
            await Qmp.ExecuteAsync("quit");
        }
        catch (QmpConnectionClosedException)
        {
            // It may close the monitor before the reply gets out.
        }

        await daemon.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(30));
        await ForgetDaemonAsync();
    }

    /// <summary>SIGKILL, like a host crash for the image: loaded persistent bitmaps stay flagged in-use.</summary>
    public async Task CrashAsync()
    {
        await KillDaemonAsync();
        await ForgetDaemonAsync();
    }

    public async Task LaunchAsync()
    {
        var arguments = new List<string>
        {
            "--chardev", $"socket,id=qmp0,path={Path.Combine(Directory, "qmp.sock")},server=on,wait=off",
            "--monitor", "chardev=qmp0",
        };
        for (int i = 0; i < DiskCount; i++)
        {
            arguments.AddRange(
            [
                "--object", $"throttle-group,id=tg{i}",
                "--blockdev", $"driver=file,node-name=file{i},filename={ImagePath(i)}",
                "--blockdev", $"driver={(i == 0 ? "qcow2" : "raw")},node-name=fmt{i},file=file{i}",
                "--blockdev", $"driver=throttle,node-name=top{i},throttle-group=tg{i},file=fmt{i}",
                "--export", $"type=fuse,id=guest{i},node-name=top{i},mountpoint={GuestPath(i)},writable=on,allow-other=off",
            ]);
        }

        string qmpSocket = Path.Combine(Directory, "qmp.sock");
        File.Delete(qmpSocket);
        var startInfo = new ProcessStartInfo("qemu-storage-daemon")
        {
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        arguments.ForEach(startInfo.ArgumentList.Add);
        _daemon = Process.Start(startInfo)!;
        _daemon.OutputDataReceived += (_, e) => Append(e.Data);
        _daemon.ErrorDataReceived += (_, e) => Append(e.Data);
        _daemon.BeginOutputReadLine();
        _daemon.BeginErrorReadLine();

        var stopwatch = Stopwatch.StartNew();
        while (!File.Exists(qmpSocket))
        {
            if (_daemon.HasExited || stopwatch.Elapsed > TimeSpan.FromSeconds(30))
            {
                throw new InvalidOperationException($"qemu-storage-daemon did not start: {Output}");
            }

            await Task.Delay(20);
        }

        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        // The monitor answers only after every command-line option ran, so the FUSE mounts are up then. The socket
        // file exists from bind(), before listen(): a refused connect means "not yet", not "gone".
        while (true)
        {
            try
            {
                _qmp = await QmpClient.ConnectAsync(qmpSocket, timeout.Token);
                break;
            }
            catch (System.Net.Sockets.SocketException e) when (e.SocketErrorCode == System.Net.Sockets.SocketError.ConnectionRefused
                && !_daemon.HasExited && !timeout.IsCancellationRequested)
            {
                await Task.Delay(20, timeout.Token);
            }
        }
    }

    public async ValueTask DisposeAsync()
    {
        try
        {
            await KillDaemonAsync();
        }
        finally
        {
            await ForgetDaemonAsync();
            System.IO.Directory.Delete(Directory, recursive: true);
        }
    }

    private async Task<JsonNode> QmpAsync(string command, JsonObject arguments) => (await Qmp.ExecuteAsync(command, arguments))!;

    private async Task KillDaemonAsync()
    {
        if (_daemon is { HasExited: false })
        {
            _daemon.Kill(entireProcessTree: true);
            await _daemon.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(10));
        }
    }

    private async Task ForgetDaemonAsync()
    {
        if (_qmp is not null)
        {
            await _qmp.DisposeAsync();
            _qmp = null;
        }

        _daemon?.Dispose();
        _daemon = null;

        // A killed daemon leaves its FUSE mounts behind ("Transport endpoint is not connected"); they
        // block both a restart and deleting the directory. Lazy unmount; an unmounted file just fails.
        for (int i = 0; i < DiskCount; i++)
        {
            using var unmount = Process.Start(new ProcessStartInfo("fusermount3", ["-u", "-z", GuestPath(i)])
            {
                RedirectStandardOutput = true,
                RedirectStandardError = true,
                UseShellExecute = false,
            })!;
            await unmount.WaitForExitAsync();
        }
    }

    private void Append(string? line)
    {
        if (line is not null)
        {
            lock (_output)
            {
                _output.AppendLine(line);
            }
        }
    }
}
