using Grpc.Backup.Service.Internal.Configuration;

namespace Grpc.Backup.Service.Internal.Engine;

/// <summary>What one run backs up and how: from a job's config, or from a one-off request with the storage's defaults.</summary>
internal sealed record BackupPlan(string JobName, StorageConfig Storage, IReadOnlyList<ConfiguredGuest> Guests, string FleecingDirectory,
    ulong BandwidthLimit, RetentionSettings Retention, NotesTemplate? Notes, string? Hook, uint Priority, JobMode Mode = JobMode.Snapshot,
    IReadOnlyList<string>? ExcludePaths = null, bool FileManifest = true)
{
    /// <summary>Where the run's end is reported (job runs only; a one-off backup reports to its caller).</summary>
    public IReadOnlyList<NotificationTarget> Notify { get; init; } = [];

    public bool NotifyOnFailureOnly { get; init; }

    public static BackupPlan FromJob(JobConfig job, ServiceConfiguration config) => new(
        job.Name,
        config.Storages[job.Storage],
        [.. job.Selection.Resolve(config.Guests.Keys, id => config.Guests[id].Tags).Select(id => config.Guests[id])],
        job.FleecingDirectory ?? config.Host.FleecingDirectory,
        job.BandwidthLimit,
        job.Retention,
        job.Notes,
        job.Hook,
        job.Priority,
        job.Mode,
        job.ExcludePaths,
        job.FileManifest)
    {
        Notify = [.. job.Notify.Select(name => config.Notifications[name])],
        NotifyOnFailureOnly = job.NotifyOnFailureOnly,
    };
}
