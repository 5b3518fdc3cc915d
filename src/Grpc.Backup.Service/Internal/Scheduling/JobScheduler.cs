using Grpc.Backup.Service.Internal.Catalog;
using Grpc.Backup.Service.Internal.Configuration;
using Grpc.Backup.Service.Internal.Engine;
using Grpc.Backup.Service.Internal.Tasks;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace Grpc.Backup.Service.Internal.Scheduling;

/// <summary>
/// Fires jobs at their cron times (Cronos, in the host's local time zone). The last firing of each job is stored in
/// the catalog, so after downtime a job with <c>repeat-missed: yes</c> runs once for the occurrences it missed
/// (never once per missed occurrence), and a job without it simply waits for its next time. A job that is still
/// running when its time comes again is not started twice; that firing is skipped and logged.
/// </summary>
internal sealed partial class JobScheduler(JobEngine engine, CatalogDatabase catalog, TaskRegistry tasks, TimeProvider time,
    ILogger<JobScheduler> logger) : BackgroundService
{
    private static readonly TimeSpan Tick = TimeSpan.FromMilliseconds(250);

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        ServiceConfiguration config = engine.Config;
        DateTime startedAt = time.GetUtcNow().UtcDateTime;
        foreach (JobConfig job in config.Jobs.Values.Where(j => j.Schedule is not null && j.Enabled))
        {
            DateTime? last = catalog.LastFire(job.Name);
            if (last is null)
            {
                // A new job starts counting now: the first run is its next occurrence, not a catch-up.
                catalog.SetLastFire(job.Name, startedAt);
            }
            else if (job.RepeatMissed && NextAfter(job, last.Value) is { } missed && missed <= startedAt)
            {
                LogMissed(logger, job.Name, missed);
                Fire(job, startedAt, "repeat-missed");
            }
            else if (NextAfter(job, last.Value) is { } skipped && skipped <= startedAt)
            {
                // Not repeating: forget the missed occurrences so they are not run later either.
                catalog.SetLastFire(job.Name, startedAt);
            }
        }
        using var timer = new PeriodicTimer(Tick, time);
        while (await timer.WaitForNextTickAsync(stoppingToken))
        {
            DateTime now = time.GetUtcNow().UtcDateTime;
            foreach (JobConfig job in config.Jobs.Values.Where(j => j.Schedule is not null && j.Enabled))
            {
                DateTime last = catalog.LastFire(job.Name) ?? startedAt;
                if (NextAfter(job, last) is { } due && due <= now)
                {
                    Fire(job, due, "schedule");
                }
            }
        }
    }

    /// <summary>The job's next occurrence after <paramref name="utc"/>, or null if it has none.</summary>
    public static DateTime? NextAfter(JobConfig job, DateTime utc) =>
        job.Schedule?.GetNextOccurrence(DateTime.SpecifyKind(utc, DateTimeKind.Utc), TimeZoneInfo.Local);

    private void Fire(JobConfig job, DateTime occurrence, string reason)
    {
        catalog.SetLastFire(job.Name, occurrence);
        if (tasks.RunningJob(job.Name) is { } running)
        {
            LogStillRunning(logger, job.Name, running.Id);
            return;
        }
        ServiceTask task = job.Kind == JobKind.Verify
            ? engine.StartVerify(VerifyPlan.FromJob(job, engine.Config))
            : engine.Start("job", BackupPlan.FromJob(job, engine.Config));
        task.Log("INFO", "", $"started by {reason} ({job.ScheduleText})");
        LogFired(logger, job.Name, reason, task.Id);
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "Job {Job} started by {Reason}: task {TaskId}")]
    private static partial void LogFired(ILogger logger, string job, string reason, string taskId);

    [LoggerMessage(Level = LogLevel.Information, Message = "Job {Job} missed its run at {Missed:o} while the service was down; running it now")]
    private static partial void LogMissed(ILogger logger, string job, DateTime missed);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Job {Job} is due but still running as task {TaskId}; this occurrence is skipped")]
    private static partial void LogStillRunning(ILogger logger, string job, string taskId);
}
