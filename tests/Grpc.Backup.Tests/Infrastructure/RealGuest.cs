using System.Diagnostics;
using Grpc.Backup.Orchestrator.Inventory;
using Grpc.Backup.Qemu;

namespace Grpc.Backup.Tests.Infrastructure;

/// <summary>
/// A real Linux guest: Debian's kernel and the project's own initramfs (build/real-guest) on qemu-system-x86_64 under
/// TCG, two ext4 data disks on virtio-blk (a qcow2 and a raw, each under the throttle filter snapshot access needs),
/// the real qemu-guest-agent on a virtio-serial port, a writer that never stops, and a second virtio-serial port whose
/// host side is a file: the agent's fsfreeze hook writes a manifest (sha256 of every file) there at each freeze, and
/// the guest's shutdown script one at a poweroff. The manifest leaves the guest through its own port, so recording it
/// changes nothing on the disks that are backed up, and the host reads it without asking the guest anything.
/// </summary>
internal sealed partial class RealGuest : IAsyncDisposable
{
    public const int DiskCount = 2;

    private RealGuest(string directory, ChildProcess process, RunStateObserver observer)
    {
        Directory = directory;
        Process = process;
        Observer = observer;
    }

    public string Directory { get; }

    public ChildProcess Process { get; }

    /// <summary>The test's own monitor (the host's is qmp.sock): it sees POWERDOWN, SHUTDOWN, STOP, RESET, RESUME.</summary>
    public RunStateObserver Observer { get; }

    /// <summary>From starting QEMU to the guest agent's first answer to guest-ping.</summary>
    public TimeSpan BootTime { get; private set; }

    public string QmpSocket => Path.Combine(Directory, "qmp.sock");

    public string AgentSocket => Path.Combine(Directory, "agent.sock");

    public string ConsoleLog => Path.Combine(Directory, "console.log");

    public GuestManifestLog Manifests => new(Path.Combine(Directory, "manifest.log"));

    public VmGuest Guest => GuestInventory.Load(Path.Combine(Directory, "inventory")).Vms["300"];

    /// <summary>The file system label of a device's disk: drive-virtioN holds dataN (its files are dataN/... in a manifest).</summary>
    public static string LabelOf(string device) => "data" + device["drive-virtio".Length..];

    /// <summary>Builds (or takes from the cache) the guest image, makes the data disks, boots, and waits for the agent.</summary>
    public static async Task<RealGuest> StartAsync(string directory)
    {
        System.IO.Directory.CreateDirectory(Path.Combine(directory, "inventory"));
        string image = await BuildImageAsync();
        await CreateDisksAsync(directory);
        return await BootAsync(directory, QemuArguments(directory, image, OwnDisks(directory)), waitForAgent: true);
    }

    /// <summary>
    /// Boots the guest on disks someone else made (a live restore's): each a <c>-blockdev</c> tree whose top node a
    /// virtio-blk device attaches with the given extra properties, in order (disk 0 holds data0, …). Returns once QEMU's
    /// monitor listens; the agent may not answer yet.
    /// </summary>
    public static async Task<RealGuest> StartOnAsync(string directory, IEnumerable<(string BlockdevJson, string NodeName, string DeviceProperties)> disks)
    {
        System.IO.Directory.CreateDirectory(directory);
        string image = await BuildImageAsync();
        var arguments = new List<string>();
        int n = 0;
        foreach (var (json, node, properties) in disks)
        {
            arguments.AddRange(["-blockdev", json, "-device", $"virtio-blk-pci,drive={node},id=vd{n++},{properties}"]);
        }
        return await BootAsync(directory, QemuArguments(directory, image, arguments), waitForAgent: false);
    }

    private static async Task<RealGuest> BootAsync(string directory, string[] arguments, bool waitForAgent)
    {
        long started = Stopwatch.GetTimestamp();
        ChildProcess process = ChildProcess.Start("qemu-system-x86_64", arguments);
        RealGuest? guest = null;
        try
        {
            await process.WaitForFileAsync(Path.Combine(directory, "observe.sock"), TimeSpan.FromSeconds(60));
            guest = new RealGuest(directory, process, await RunStateObserver.ConnectAsync(Path.Combine(directory, "observe.sock")));
            if (waitForAgent)
            {
                await guest.WaitForAgentAsync(BootBound);
                guest.BootTime = Stopwatch.GetElapsedTime(started);
            }
            return guest;
        }
        catch
        {
            if (guest is not null)
            {
                await guest.DisposeAsync();
            }
            else
            {
                await process.DisposeAsync();
            }
            throw;
        }
    }

    /// <summary>How long a boot may take on a loaded machine under TCG (it takes 10 to 60 s).</summary>
    public static TimeSpan BootBound => TimeSpan.FromMinutes(4);

    public Task<string> StatusAsync() => Observer.StatusAsync();

    /// <summary>Polls guest-ping through the agent socket until the real agent answers (after a boot or a reboot).</summary>
    public async Task WaitForAgentAsync(TimeSpan bound)
    {
        var deadline = DateTime.UtcNow + bound;
        while (true)
        {
            try
            {
                await using var agent = await ConnectAgentAsync(TimeSpan.FromSeconds(5));
                return;
            }
            catch (Exception e) when (e is OperationCanceledException or IOException or System.Net.Sockets.SocketException or QmpException)
            {
                if (Process.HasExited)
                {
                    throw new InvalidOperationException($"QEMU exited: {Process.StandardError}\nconsole:\n{Console()}");
                }
                if (DateTime.UtcNow > deadline)
                {
                    throw new TimeoutException($"the guest agent did not answer within {bound}; console:\n{Console()}");
                }
                await Task.Delay(250);
            }
        }
    }

    /// <summary>A connected agent client that has answered guest-ping. Dispose it: the agent's chardev serves one client.</summary>
    public async Task<GuestAgentClient> ConnectAgentAsync(TimeSpan timeout)
    {
        using var cts = new CancellationTokenSource(timeout);
        GuestAgentClient agent = await GuestAgentClient.ConnectAsync(AgentSocket, cts.Token);
        try
        {
            await agent.ExecuteAsync("guest-ping", cts.Token);
            return agent;
        }
        catch
        {
            await agent.DisposeAsync();
            throw;
        }
    }

    /// <summary>The run-state events seen since the last call, in order.</summary>
    public List<string> DrainEvents() => Observer.DrainEvents();

    /// <summary>The guest's serial console so far (for failure messages).</summary>
    public string Console() => File.Exists(ConsoleLog) ? File.ReadAllText(ConsoleLog) : "";

    public async ValueTask DisposeAsync()
    {
        await Observer.DisposeAsync();
        await Process.DisposeAsync();
    }
}
