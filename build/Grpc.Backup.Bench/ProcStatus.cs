using System.Globalization;

namespace Grpc.Backup.Bench;

/// <summary>A process's memory as the kernel counts it in /proc/PID/status.</summary>
internal static class ProcStatus
{
    /// <summary>A <c>Vm*</c> or <c>Rss*</c> field of /proc/PID/status, in MiB.</summary>
    public static double MiB(int pid, string field)
    {
        foreach (string line in File.ReadLines($"/proc/{pid}/status"))
        {
            if (line.StartsWith(field + ":", StringComparison.Ordinal))
            {
                return long.Parse(line.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1], CultureInfo.InvariantCulture) / 1024.0;
            }
        }
        throw new InvalidOperationException($"no {field} in /proc/{pid}/status");
    }

    /// <summary>Starts a new peak: VmHWM becomes the current RSS (proc(5), clear_refs value 5).</summary>
    public static void ResetPeak(int pid) => File.WriteAllText($"/proc/{pid}/clear_refs", "5");
}
