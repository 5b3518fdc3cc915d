using System.Diagnostics;
using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using Grpc.Backup.Orchestrator.Inventory;
using Grpc.Backup.Protocol;
using Grpc.Backup.Qemu;
using Microsoft.Win32.SafeHandles;

namespace Grpc.Backup.Conformance.Internal;

/// <summary>
/// A throwaway VM for the round trips: qemu-storage-daemon holding a qcow2 and a raw disk, each under the throttle
/// filter the orchestrator inserts copy-before-write into, and exported to this process over FUSE as the guest's
/// view (writes go through the filter, as a guest's would). No guest agent: the host falls back to a crash-consistent
/// instant, and since nothing writes during a backup, the disks' content just before it is the content at its instant.
/// </summary>
internal sealed class ScratchGuest : IAsyncDisposable
{
    private readonly string _directory;
    private readonly IReadOnlyList<ScratchDisk> _disks;
    private readonly Process _daemon;
    private readonly Dictionary<string, SafeFileHandle> _views = new(StringComparer.Ordinal);

    private ScratchGuest(string directory, IReadOnlyList<ScratchDisk> disks, Process daemon, VmGuest guest)
    {
        _directory = directory;
        _disks = disks;
        _daemon = daemon;
        Guest = guest;
    }

    public VmGuest Guest { get; }

    public IEnumerable<string> DeviceNames => _disks.Select(d => d.DeviceName);

    /// <summary>Creates the images, starts qemu-storage-daemon and writes random data at known offsets.</summary>
    public static async Task<ScratchGuest> StartAsync(string directory, string guestId, CancellationToken cancellationToken)
    {
        Directory.CreateDirectory(directory);
        Directory.CreateDirectory(Path.Combine(directory, "view"));
        ScratchDisk[] disks = [new("drive-scsi0", "qcow2", 32L << 20, 0), new("drive-scsi1", "raw", 8L << 20, 1)];
        var qsdArguments = new List<string>
        {
            "--chardev", $"socket,id=qmp0,path={directory}/qmp.sock,server=on,wait=off", "--monitor", "chardev=qmp0",
            "--pidfile", $"{directory}/qsd.pid",
        };
        foreach (ScratchDisk disk in disks)
        {
            await Tool.RunAsync("qemu-img", ["create", "-q", "-f", disk.Format, Path.Combine(directory, disk.FileName),
                disk.SizeBytes.ToString(CultureInfo.InvariantCulture)], cancellationToken);
            await File.WriteAllBytesAsync(Path.Combine(directory, "view", disk.DeviceName), [], cancellationToken);
            qsdArguments.AddRange([
                "--object", $"throttle-group,id={disk.ThrottleGroup}",
                "--blockdev", $"driver=file,node-name=file{disk.Index},filename={directory}/{disk.FileName},discard=unmap",
                "--blockdev", $"driver={disk.Format},node-name={disk.FormatNode},file=file{disk.Index},discard=unmap",
                "--blockdev", $"driver=throttle,node-name={disk.FilterNode},throttle-group={disk.ThrottleGroup},file={disk.FormatNode}",
                "--export", $"type=fuse,id=view{disk.Index},node-name={disk.FilterNode},mountpoint={directory}/view/{disk.DeviceName},writable=on",
            ]);
        }
        var daemon = Process.Start(new ProcessStartInfo("qemu-storage-daemon", qsdArguments) { RedirectStandardError = true })
            ?? throw new InvalidOperationException("qemu-storage-daemon did not start");
        _ = daemon.StandardError.ReadToEndAsync(cancellationToken);
        var config = new StringBuilder($"# scratch guest of grpc-backup-conformance\ntype: vm\nname: conformance-{guestId}\nqmp: {directory}/qmp.sock\n");
        foreach (ScratchDisk disk in disks)
        {
            config.Append(CultureInfo.InvariantCulture,
                $"disk: {disk.DeviceName} file={directory}/{disk.FileName} format={disk.Format} node={disk.FormatNode} filter={disk.FilterNode} throttle-group={disk.ThrottleGroup} size={disk.SizeBytes}\n");
        }
        config.Append("memory: 64\ncores: 1\n");
        var guest = new ScratchGuest(directory, disks, daemon,
            GuestInventory.ParseVm(Path.Combine(directory, guestId + ".conf"), Encoding.UTF8.GetBytes(config.ToString())) with { GuestId = guestId });
        try
        {
            await guest.WaitUntilUpAsync(cancellationToken);
            foreach (ScratchDisk disk in disks)
            {
                guest._views[disk.DeviceName] = File.OpenHandle(Path.Combine(directory, "view", disk.DeviceName), FileMode.Open,
                    FileAccess.ReadWrite, FileShare.ReadWrite, FileOptions.WriteThrough);
            }
            // Data at known offsets, holes between: the full backup must keep both.
            foreach (long mib in (long[])[0, 3, 7, 12, 20, 31])
            {
                guest.WriteRandom("drive-scsi0", mib << 20, 1 << 20);
            }
            guest.WriteRandom("drive-scsi1", 0, 1 << 20);
            guest.WriteRandom("drive-scsi1", 5L << 20, 512 << 10);
            return guest;
        }
        catch
        {
            await guest.DisposeAsync();
            throw;
        }
    }

    /// <summary>Writes random bytes as the guest would (through the filter node).</summary>
    public void WriteRandom(string device, long offset, int length)
    {
        byte[] data = RandomNumberGenerator.GetBytes(length);
        RandomAccess.Write(_views[device], data, offset);
    }

    /// <summary>The sha256 of each disk as the guest sees it now.</summary>
    public IReadOnlyDictionary<string, string> Checksums()
    {
        var sums = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (ScratchDisk disk in _disks)
        {
            using var sha = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
            byte[] buffer = new byte[1 << 20];
            for (long offset = 0; offset < disk.SizeBytes; offset += buffer.Length)
            {
                int length = (int)Math.Min(buffer.Length, disk.SizeBytes - offset);
                ReadView(disk.DeviceName, buffer.AsSpan(0, length), offset);
                sha.AppendData(buffer, 0, length);
            }
            sums[disk.DeviceName] = Convert.ToHexStringLower(sha.GetHashAndReset());
        }
        return sums;
    }

    /// <summary>Each disk's chunk digests (<c>VolumeDigest</c>) as the guest sees it now.</summary>
    public IReadOnlyDictionary<string, ChunkDigestList> ChunkDigests()
    {
        var lists = new Dictionary<string, ChunkDigestList>(StringComparer.Ordinal);
        byte[] buffer = new byte[ChunkDigestList.ChunkSize];
        foreach (ScratchDisk disk in _disks)
        {
            var list = new ChunkDigestList(disk.SizeBytes);
            for (int i = 0; i < list.ChunkCount; i++)
            {
                Span<byte> chunk = buffer.AsSpan(0, list.LengthOf(i));
                ReadView(disk.DeviceName, chunk, (long)i * ChunkDigestList.ChunkSize);
                list.Set(i, SHA256.HashData(chunk));
            }
            lists[disk.DeviceName] = list;
        }
        return lists;
    }

    private void ReadView(string device, Span<byte> buffer, long offset)
    {
        for (int done = 0; done < buffer.Length;)
        {
            int read = RandomAccess.Read(_views[device], buffer[done..], offset + done);
            if (read == 0)
            {
                throw new IOException($"{device}: short read at {offset + done}");
            }
            done += read;
        }
    }

    public long SizeOf(string device) => _disks.Single(d => d.DeviceName == device).SizeBytes;

    private async Task WaitUntilUpAsync(CancellationToken cancellationToken)
    {
        for (int i = 0; i < 200; i++)
        {
            if (_daemon.HasExited)
            {
                throw new InvalidOperationException($"qemu-storage-daemon exited with {_daemon.ExitCode}");
            }
            if (File.Exists(Path.Combine(_directory, "qmp.sock")) && File.Exists(Path.Combine(_directory, "qsd.pid")))
            {
                return;
            }
            await Task.Delay(50, cancellationToken);
        }
        throw new TimeoutException("qemu-storage-daemon did not come up within 10 s");
    }

    /// <summary>Quits qemu-storage-daemon (killing it if it does not), and detaches the FUSE views.</summary>
    public async ValueTask DisposeAsync()
    {
        foreach (SafeFileHandle view in _views.Values)
        {
            view.Dispose();
        }
        if (!_daemon.HasExited)
        {
            try
            {
                // The monitor serves one client at a time: connect only now, when no backup holds it.
                using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(10));
                await using var qmp = await QmpClient.ConnectAsync(Path.Combine(_directory, "qmp.sock"), timeout.Token);
                await qmp.ExecuteAsync("quit", cancellationToken: timeout.Token);
            }
            catch (Exception e) when (e is QmpException or IOException or System.Net.Sockets.SocketException or OperationCanceledException)
            {
                _daemon.Kill();
            }
            if (!_daemon.WaitForExit(10_000))
            {
                _daemon.Kill();
                await _daemon.WaitForExitAsync();
            }
        }
        _daemon.Dispose();
        string mounts = await File.ReadAllTextAsync("/proc/self/mounts");
        foreach (ScratchDisk disk in _disks)
        {
            string mountpoint = Path.Combine(_directory, "view", disk.DeviceName);
            if (mounts.Contains($" {mountpoint} ", StringComparison.Ordinal))
            {
                await Tool.RunAsync("umount", ["-l", mountpoint], CancellationToken.None);
            }
        }
    }
}
