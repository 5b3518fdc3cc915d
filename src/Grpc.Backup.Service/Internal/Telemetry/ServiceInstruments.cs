using System.Diagnostics;
using System.Diagnostics.Metrics;

namespace Grpc.Backup.Service.Internal.Telemetry;

/// <summary>
/// The service's spans and metrics. Spans: one <c>backup job</c> per run and one <c>backup guest</c> per guest within
/// it; the provider RPCs (<see cref="Host.ProviderTelemetry"/>) nest under them, so one trace shows a job's every call.
/// Metrics are tagged with the storage and the provider's name, so failures and rates read per provider.
/// </summary>
internal static class ServiceInstruments
{
    public const string Name = "Grpc.Backup.Service";

    public static readonly ActivitySource Source = new(Name);

    private static readonly Meter Meter = new(Name);

    /// <summary>Finished guest backups, tagged with their outcome (succeeded, failed, cancelled).</summary>
    public static readonly Counter<long> GuestBackups = Meter.CreateCounter<long>("grpc_backup.guest_backups", "{backup}",
        "Guest backups finished, by outcome");

    /// <summary>Finished job runs, tagged with their outcome; a failed JobInit counts as failed with phase job-init.</summary>
    public static readonly Counter<long> Jobs = Meter.CreateCounter<long>("grpc_backup.jobs", "{run}", "Job runs finished, by outcome");

    /// <summary>Backups verified, by outcome (verified, failed, not-verifiable).</summary>
    public static readonly Counter<long> Verifications = Meter.CreateCounter<long>("grpc_backup.verifications", "{backup}",
        "Backups restored to scratch and compared with what was recorded at backup time, by outcome");

    public static readonly Counter<long> BytesRead = Meter.CreateCounter<long>("grpc_backup.backup.read", "By",
        "Bytes read from guests by successful backups");

    public static readonly Counter<long> BytesStored = Meter.CreateCounter<long>("grpc_backup.backup.stored", "By",
        "Archive bytes the provider reported for successful backups");

    public static readonly Histogram<double> Duration = Meter.CreateHistogram<double>("grpc_backup.backup.duration", "s",
        "Duration of guest backups, from holding their slots to BackupCleanup", advice: new InstrumentAdvice<double>
        {
            HistogramBucketBoundaries = [1, 5, 10, 30, 60, 120, 300, 600, 1800, 3600, 7200, 14400],
        });

    public static readonly Histogram<double> Rate = Meter.CreateHistogram<double>("grpc_backup.backup.rate", "By/s",
        "Read rate of successful guest backups", advice: new InstrumentAdvice<double>
        {
            HistogramBucketBoundaries = [1 << 20, 10 << 20, 50 << 20, 100 << 20, 200 << 20, 500 << 20, 1000 << 20, 2000 << 20],
        });
}
