using Grpc.Backup.Management.V1;

namespace Grpc.Backup.Service.Internal.Notifications;

/// <summary>
/// What a notification tells: one job run, either at its end (<c>verify-end</c> for a verify run) (<c>job-end</c>) or as soon as JobInit failed
/// (<c>job-init-failed</c>, sent before JobCleanup and the hooks, so an operator hears of a dead repository at once).
/// </summary>
internal sealed record JobReport(string Event, string Job, string JobId, string TaskId, string Storage, string Node, string State, string Error,
    DateTime Started, DateTime Ended, IReadOnlyList<GuestResult> Guests)
{
    public const string JobEnd = "job-end";

    public const string JobInitFailed = "job-init-failed";

    /// <summary>The end of a verify run; its error names every backup that failed verification.</summary>
    public const string VerifyEnd = "verify-end";

    public bool Succeeded => State == "succeeded";
}
