using System.Diagnostics;

namespace Grpc.Backup.Bench;

/// <summary>Runs a peer tool (nbdcopy, qemu-img, sync) and times it.</summary>
internal static class Tool
{
    public static async Task<double> TimeAsync(string file, params string[] arguments)
    {
        var start = Stopwatch.GetTimestamp();
        await RunAsync(file, arguments);
        return Stopwatch.GetElapsedTime(start).TotalSeconds;
    }

    public static async Task RunAsync(string file, params string[] arguments)
    {
        var info = new ProcessStartInfo(file) { RedirectStandardError = true, RedirectStandardOutput = true };
        foreach (string argument in arguments)
        {
            info.ArgumentList.Add(argument);
        }
        using var process = Process.Start(info)!;
        Task<string> stderr = process.StandardError.ReadToEndAsync();
        _ = process.StandardOutput.ReadToEndAsync();
        await process.WaitForExitAsync();
        if (process.ExitCode != 0)
        {
            throw new InvalidOperationException($"{file} failed: {await stderr}");
        }
    }
}
