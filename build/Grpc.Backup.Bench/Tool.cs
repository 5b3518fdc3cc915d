using System.Diagnostics;
using Grpc.Backup.Transport;

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
        try
        {
            await ExternalProcess.RunAsync(file, arguments, CancellationToken.None);
        }
        catch (ExternalProcessException e)
        {
            throw new InvalidOperationException(e.Message, e);
        }
    }
}
