using System.Diagnostics;

namespace Grpc.Backup.Orchestrator.Internal;

/// <summary>Runs qemu-img with an argument list (never a shell) and turns failure into a clear exception.</summary>
internal static class QemuImg
{
    /// <summary>The virtual size of an image the host owns (never one a provider handed over: those are checked first).</summary>
    public static async Task<ulong> GetVirtualSizeAsync(string path, Inventory.DiskFormat format, CancellationToken cancellationToken)
    {
        string json = await RunAsync(["info", "--output=json", "-U", "-f", format == Inventory.DiskFormat.Qcow2 ? "qcow2" : "raw", path], cancellationToken);
        return (ulong?)System.Text.Json.Nodes.JsonNode.Parse(json)?["virtual-size"]
            ?? throw new BackupException($"qemu-img info gave no virtual size for {path}");
    }

    public static async Task<string> RunAsync(IEnumerable<string> arguments, CancellationToken cancellationToken)
    {
        var info = new ProcessStartInfo("qemu-img") { RedirectStandardError = true, RedirectStandardOutput = true };
        foreach (string argument in arguments)
        {
            info.ArgumentList.Add(argument);
        }
        using var process = Process.Start(info) ?? throw new BackupException("cannot start qemu-img");
        Task<string> stderr = process.StandardError.ReadToEndAsync(cancellationToken);
        Task<string> stdout = process.StandardOutput.ReadToEndAsync(cancellationToken);
        await process.WaitForExitAsync(cancellationToken);
        if (process.ExitCode != 0)
        {
            throw new BackupException($"qemu-img {string.Join(' ', info.ArgumentList.Take(1))} failed: {(await stderr).Trim()}");
        }
        return await stdout;
    }
}
