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
        // Jobs are read each tick: in a cluster, applied definitions add, change and remove jobs while the service runs.
        // A job seen for the first time (at start-up, or applied since) is caught up as repeat-missed says.
        var known = new HashSet<string>(StringComparer.Ordinal);
        Schedule(known, time.GetUtcNow().UtcDateTime);
        using var timer = new PeriodicTimer(Tick, time);
        while (await timer.WaitForNextTickAsync(stoppingToken))
        {
            Schedule(known, time.GetUtcNow().UtcDateTime);
        }
    }

    private void Schedule(HashSet<string> known, DateTime now)
    {
        ServiceConfiguration config = engine.Config;
        // The cluster's jobs fire once for the cluster (ClusterScheduler), never by each host's clock.
        var jobs = config.Jobs.Values.Where(j => j.Schedule is not null && j.Enabled && !config.IsClusterJob(j.Name)).ToList();
        known.IntersectWith(jobs.Select(j => j.Name));
        foreach (JobConfig job in jobs)
        {
            if (known.Add(job.Name))
            {
                Arrive(job, now);
            }
            else if (NextAfter(job, catalog.LastFire(job.Name) ?? now) is { } due && due <= now)
            {
                Fire(job, due, "schedule");
            }
        }
    }

    /// <summary>A job seen for the first time since the service started: a new one, or one whose runs were missed.</summary>
    private void Arrive(JobConfig job, DateTime now)
    {
        DateTime? last = catalog.LastFire(job.Name);
        if (last is null)
        {
            // A new job starts counting now: the first run is its next occurrence, not a catch-up.
            catalog.SetLastFire(job.Name, now);
        }
        else if (job.RepeatMissed && NextAfter(job, last.Value) is { } missed && missed <= now)
        {
            LogMissed(logger, job.Name, missed);
            Fire(job, now, "repeat-missed");
        }
        else if (NextAfter(job, last.Value) is { } skipped && skipped <= now)
        {
            // Not repeating: forget the missed occurrences so they are not run later either.
            catalog.SetLastFire(job.Name, now);
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
        ServiceTask task = engine.StartJob(job, engine.Config);
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
