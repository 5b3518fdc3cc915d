using System.Text.Json.Nodes;
using Grpc.Backup.Transport;

namespace Grpc.Backup.Orchestrator;

/// <summary>
/// Starts a live restore's VM when the host does not start VMs itself: the administrator's program (trusted like a
/// hook: the caller checks it) is run with the target directory as its argument and, on stdin, one JSON object:
/// <c>{"target_directory", "guest_config" (the restored guest.conf), "disks": [{"device", "node_name", "blockdev" (the
/// -blockdev tree), "device_properties" (rerror=stop,werror=stop: put them on the guest's device), "image",
/// "size_bytes"}]}</c>. It starts the VM on those nodes, leaves it running (daemonized, its stdout and stderr not
/// inherited, or the host waits for them until <see cref="Timeout"/>), prints the VM's QMP socket path as its last line
/// and exits 0. Any other exit fails the restore before a byte streams.
/// </summary>
public sealed class GuestStartProgram(string path)
{
    /// <summary>How long the program may take to start the VM.</summary>
    public static readonly TimeSpan Timeout = TimeSpan.FromMinutes(2);

    public string Path => path;

    /// <summary>Runs the program for <paramref name="guest"/>; returns the QMP socket it printed.</summary>
    public async Task<string> StartAsync(LiveRestoreGuest guest, string targetDirectory, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(guest);
        var description = new JsonObject
        {
            ["target_directory"] = targetDirectory,
            ["guest_config"] = System.IO.Path.Combine(targetDirectory, "guest.conf"),
            ["disks"] = new JsonArray([.. guest.Disks.Select(d => (JsonNode)new JsonObject
            {
                ["device"] = d.DeviceName,
                ["node_name"] = d.NodeName,
                ["blockdev"] = JsonNode.Parse(d.BlockdevJson),
                ["device_properties"] = LiveRestoreDisk.DeviceErrorProperties,
                ["image"] = d.ImagePath,
                ["size_bytes"] = d.SizeBytes,
            })]),
        };
        string output;
        try
        {
            output = await ExternalProcess.RunAsync(path, [targetDirectory], cancellationToken, Timeout, standardInput: description.ToJsonString());
        }
        catch (ExternalProcessException e)
        {
            throw new BackupException($"the guest start program failed: {e.Message}", e);
        }
        string? socket = output.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).LastOrDefault();
        if (socket is null || !System.IO.Path.IsPathFullyQualified(socket))
        {
            throw new BackupException($"the guest start program {path} printed no absolute QMP socket path as its last line");
        }
        return socket;
    }
}
