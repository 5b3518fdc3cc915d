using Grpc.Backup.Orchestrator.Inventory;

namespace Grpc.Backup.Tests.Infrastructure;

/// <summary>
/// A real qemu-system-x86_64 VM under TCG with no guest OS: one qcow2 disk with generated data on a virtio-blk device,
/// under the throttle filter snapshot access needs, a QMP monitor for the host and a second one the test observes
/// run-state events on. With no OS it never answers an ACPI powerdown.
/// </summary>
internal sealed class SystemVmProcess : IAsyncDisposable
{
    private SystemVmProcess(string directory, ChildProcess process, RunStateObserver observer)
    {
        Directory = directory;
        Process = process;
        Observer = observer;
    }

    public string Directory { get; }

    public ChildProcess Process { get; }

    /// <summary>The test's own monitor: it sees STOP, RESUME, SHUTDOWN and RESET as they happen.</summary>
    public RunStateObserver Observer { get; }

    public string ImagePath => Path.Combine(Directory, "disk0.qcow2");

    public VmGuest Guest => GuestInventory.Load(Path.Combine(Directory, "inventory")).Vms["200"];

    public static async Task<SystemVmProcess> StartAsync(string directory, bool paused = false)
    {
        System.IO.Directory.CreateDirectory(Path.Combine(directory, "inventory"));
        string image = Path.Combine(directory, "disk0.qcow2");
        await ChildProcess.RunCheckedAsync("qemu-img", ["create", "-q", "-f", "qcow2", image, "32M"]);
        await ChildProcess.RunCheckedAsync("qemu-io", ["-f", "qcow2", "-c", "write -P 0x5a 1M 8M", "-c", "write -P 0xa5 20M 3M", image]);
        File.WriteAllText(Path.Combine(directory, "inventory", "200.conf"), $"""
            type: vm
            name: tcg-200
            qmp: {directory}/qmp.sock
            disk: drive-virtio0 file={image} format=qcow2 node=fmt0 filter=top0 throttle-group=tg0 size=32M

            """);
        ChildProcess process = ChildProcess.Start("qemu-system-x86_64",
        [
            "-machine", "pc", "-accel", "tcg", "-m", "64", "-nodefaults", "-display", "none", .. (paused ? (string[])["-S"] : []),
            "-qmp", $"unix:{directory}/qmp.sock,server=on,wait=off",
            "-qmp", $"unix:{directory}/observe.sock,server=on,wait=off",
            "-object", "throttle-group,id=tg0",
            "-blockdev", $"driver=file,node-name=file0,filename={image}",
            "-blockdev", "driver=qcow2,node-name=fmt0,file=file0",
            "-blockdev", "driver=throttle,node-name=top0,throttle-group=tg0,file=fmt0",
            "-device", "virtio-blk-pci,drive=top0,id=vda",
        ]);
        await process.WaitForFileAsync(Path.Combine(directory, "observe.sock"), TimeSpan.FromSeconds(30));
        return new SystemVmProcess(directory, process, await RunStateObserver.ConnectAsync(Path.Combine(directory, "observe.sock")));
    }

    public Task<string> StatusAsync() => Observer.StatusAsync();

    /// <summary>The run-state events seen so far, in order.</summary>
    public List<string> DrainEvents() => Observer.DrainEvents();

    public async ValueTask DisposeAsync()
    {
        await Observer.DisposeAsync();
        await Process.DisposeAsync();
    }
}
