using System.Diagnostics;
using System.Diagnostics.Metrics;

namespace Grpc.Backup.Transport;

/// <summary>
/// The figures that show a long-running process leaking, as observable gauges of the meter <see cref="MeterName"/>:
/// resident memory, open fds, OS threads and the GC heap, read when scraped. grpc-backupd and every provider built on
/// the SDK export them under the same names (Prometheus: <c>grpc_backup_process_*</c>).
/// </summary>
public static class ProcessInstruments
{
    public const string MeterName = "Grpc.Backup.Process";

    private static readonly Meter Meter = CreateMeter();

    private static Meter CreateMeter()
    {
        var meter = new Meter(MeterName);
        meter.CreateObservableGauge("grpc_backup.process.resident_memory", ResidentBytes, "By",
            "Resident set size of the process (VmRSS)");
        meter.CreateObservableGauge("grpc_backup.process.open_fds", OpenFds, "{fd}", "Open file descriptors");
        meter.CreateObservableGauge("grpc_backup.process.threads", Threads, "{thread}", "OS threads of the process");
        meter.CreateObservableGauge("grpc_backup.process.gc_heap", () => GC.GetGCMemoryInfo().HeapSizeBytes, "By",
            "Managed heap size after the last garbage collection, fragmentation included");
        return meter;
    }

    /// <summary>Makes the instruments exist (they are created once, on first use of this class).</summary>
    public static string Register() => Meter.Name;

    /// <summary>Entries in /proc/self/fd (the enumeration's own fd included, as any reader of /proc sees it).</summary>
    public static int OpenFds() => Directory.GetFileSystemEntries("/proc/self/fd").Length;

    public static int Threads()
    {
        using var self = Process.GetCurrentProcess();
        return self.Threads.Count;
    }

    public static long ResidentBytes()
    {
        using var self = Process.GetCurrentProcess();
        return self.WorkingSet64;
    }
}
