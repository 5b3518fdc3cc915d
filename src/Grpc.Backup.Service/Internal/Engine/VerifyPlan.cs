using Grpc.Backup.Service.Internal.Configuration;

namespace Grpc.Backup.Service.Internal.Engine;

/// <summary>
/// What one verify run checks: one named archive, or per guest its newest backup or all its never-verified ones,
/// chosen from the catalog after refreshing it from the provider.
/// </summary>
internal sealed record VerifyPlan(string JobName, StorageConfig Storage, string? Archive, IReadOnlyList<string> GuestIds, VerifySelection Selection)
{
    /// <summary>Where the run's end is reported, as for backup jobs.</summary>
    public IReadOnlyList<NotificationTarget> Notify { get; init; } = [];

    public bool NotifyOnFailureOnly { get; init; }

    public static VerifyPlan FromJob(JobConfig job, ServiceConfiguration config) => new(
        job.Name,
        config.Storages[job.Storage],
        null,
        [.. job.Selection.Resolve(config.Guests.Keys, id => config.Guests[id].Tags)],
        job.Verify)
    {
        Notify = [.. job.Notify.Select(name => config.Notifications[name])],
        NotifyOnFailureOnly = job.NotifyOnFailureOnly,
    };
}
