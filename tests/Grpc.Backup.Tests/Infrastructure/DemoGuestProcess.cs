using System.Text.Json;
using Grpc.Backup.Orchestrator.Inventory;

namespace Grpc.Backup.Tests.Infrastructure;

/// <summary>
/// The demo guest as a real process: qemu-storage-daemon with a qcow2 and a raw disk, a writer that keeps writing,
/// and a guest-agent socket whose freezes record each disk's sha256 at the instant (instants.jsonl).
/// </summary>
internal sealed class DemoGuestProcess : IAsyncDisposable
{
    private DemoGuestProcess(string directory, ChildProcess process)
    {
        Directory = directory;
        Process = process;
    }

    public string Directory { get; }

    public ChildProcess Process { get; }

    public string InventoryDirectory => Path.Combine(Directory, "inventory");

    public VmGuest Guest => GuestInventory.Load(InventoryDirectory).Vms["100"];

    public static async Task<DemoGuestProcess> StartAsync(string directory, params string[] extraArguments)
    {
        ChildProcess process = ChildProcess.Start("dotnet", [RepoPaths.DemoGuestDll, "--dir", directory, .. extraArguments]);
        var guest = new DemoGuestProcess(directory, process);
        try
        {
            await process.WaitForFileAsync(Path.Combine(directory, "ready"), TimeSpan.FromSeconds(60));
            return guest;
        }
        catch
        {
            await guest.DisposeAsync();
            throw;
        }
    }

    /// <summary>The disks' sha256 recorded at the most recent freeze.</summary>
    public IReadOnlyDictionary<string, string> LastInstant()
    {
        string last = File.ReadLines(Path.Combine(Directory, "instants.jsonl")).Last();
        using var document = JsonDocument.Parse(last);
        return document.RootElement.GetProperty("disks").EnumerateObject().ToDictionary(p => p.Name, p => p.Value.GetString()!);
    }

    /// <summary>The first 8 hex digits of each MiB's sha256 at the most recent freeze, per disk (to name where a restore differs).</summary>
    public IReadOnlyDictionary<string, string[]> LastInstantMebibytes()
    {
        string last = File.ReadLines(Path.Combine(Directory, "instants.jsonl")).Last();
        using var document = JsonDocument.Parse(last);
        return document.RootElement.GetProperty("mebibytes").EnumerateObject()
            .ToDictionary(p => p.Name, p => p.Value.EnumerateArray().Select(h => h.GetString()!).ToArray());
    }

    public int FreezeCount => File.Exists(Path.Combine(Directory, "instants.jsonl"))
        ? File.ReadLines(Path.Combine(Directory, "instants.jsonl")).Count()
        : 0;

    /// <summary>Stops the guest cleanly (SIGTERM): the writer stops and qemu-storage-daemon quits, storing qcow2 bitmaps.</summary>
    public async Task StopAsync()
    {
        Process.Terminate();
        await Process.WaitForExitAsync(TimeSpan.FromSeconds(30));
        await KillLeftoverDaemonAsync();
    }

    public async ValueTask DisposeAsync()
    {
        if (!Process.HasExited)
        {
            await StopAsync().ContinueWith(_ => { }, TaskScheduler.Default);
        }
        await Process.DisposeAsync();
        await KillLeftoverDaemonAsync();
    }

    /// <summary>qemu-storage-daemon is a child of the guest process; make sure it is gone even if the guest was killed.</summary>
    private async Task KillLeftoverDaemonAsync()
    {
        string pidFile = Path.Combine(Directory, "qsd.pid");
        if (File.Exists(pidFile) && int.TryParse(File.ReadAllText(pidFile).Trim(), out int pid))
        {
            try
            {
                using var qsd = System.Diagnostics.Process.GetProcessById(pid);
                if (!qsd.ProcessName.StartsWith("qemu-storage", StringComparison.Ordinal))
                {
                    return; // the pid was reused by something else
                }
                qsd.Kill();
                await qsd.WaitForExitAsync();
            }
            catch (ArgumentException)
            {
            }
            catch (InvalidOperationException)
            {
            }
        }
    }
}
