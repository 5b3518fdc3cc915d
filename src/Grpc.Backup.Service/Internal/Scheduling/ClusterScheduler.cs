using Grpc.Backup.Cluster;
using Grpc.Backup.Service.Internal.Cluster;
using Grpc.Backup.Service.Internal.Configuration;
using Grpc.Backup.Service.Internal.Engine;
using Grpc.Backup.Service.Internal.Tasks;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace Grpc.Backup.Service.Internal.Scheduling;

/// <summary>
/// The cluster's scheduled jobs (issue 19), on every host of a cluster. Leading: one host, the winner of the
/// <c>scheduler</c> election (with its session's lease), fires each scheduled time of each cluster job once for the
/// cluster (<see cref="ClusterSession.FireAsync"/>: a key created only if absent, so a time fires once even when the
/// leader changes). Following: every host watches the fires and runs its own share of each (the job's guests it runs).
/// A job the leader sees for the first time is caught up once for the cluster, at its newest missed time, when it
/// says <c>repeat-missed</c>; times within two lease TTLs of now are due rather than missed (a new leader after a
/// failover fires them).
/// </summary>
internal sealed partial class ClusterScheduler(JobEngine engine, TaskRegistry tasks, ClusterMembership membership, TimeProvider time,
    ILogger<ClusterScheduler> logger) : BackgroundService
{
    private static readonly TimeSpan Tick = TimeSpan.FromMilliseconds(250);
    private static readonly TimeSpan RetryDelay = TimeSpan.FromSeconds(1);

    protected override Task ExecuteAsync(CancellationToken stoppingToken) => Task.WhenAll(LeadAsync(stoppingToken), FollowAsync(stoppingToken));

    private async Task LeadAsync(CancellationToken stoppingToken)
    {
        while (!stoppingToken.IsCancellationRequested)
        {
            try
            {
                ClusterSession session = await membership.LiveSessionAsync(stoppingToken);
                using var lost = CancellationTokenSource.CreateLinkedTokenSource(stoppingToken, session.Lost);
                await using ClusterLeadership leadership = await session.CampaignAsync("scheduler", lost.Token);
                LogLeading(logger, leadership.Revision);
                var last = new Dictionary<string, DateTime>(StringComparer.Ordinal);
                using var timer = new PeriodicTimer(Tick, time);
                do
                {
                    await ScheduleAsync(session, last, time.GetUtcNow().UtcDateTime, lost.Token);
                }
                while (await timer.WaitForNextTickAsync(lost.Token));
            }
            catch (Exception e) when (!stoppingToken.IsCancellationRequested
                && e is OperationCanceledException or ClusterSessionLostException or ObjectDisposedException or Grpc.Core.RpcException)
            {
                // The session ended (its leadership with it) or etcd refused: campaign again under the next session.
                LogNotLeading(logger, e.Message);
                await Task.Delay(RetryDelay, stoppingToken).ContinueWith(_ => { }, TaskScheduler.Default);
            }
        }
    }

    private async Task ScheduleAsync(ClusterSession session, Dictionary<string, DateTime> last, DateTime now, CancellationToken cancellationToken)
    {
        var jobs = engine.Config.Cluster.Jobs.Values.Where(j => j.Schedule is not null && j.Enabled).ToList();
        foreach (string gone in last.Keys.Except(jobs.Select(j => j.Name), StringComparer.Ordinal).ToList())
        {
            last.Remove(gone);
        }
        foreach (JobConfig job in jobs)
        {
            if (!last.TryGetValue(job.Name, out DateTime previous))
            {
                last[job.Name] = await ArriveAsync(session, job, now, cancellationToken);
            }
            else if (JobScheduler.NextAfter(job, previous) is { } due && due <= now)
            {
                await FireAsync(session, job, due, "schedule", cancellationToken);
                last[job.Name] = due;
            }
        }
    }

    /// <summary>A job this leader sees for the first time: continue from the cluster's newest fired time.</summary>
    private async Task<DateTime> ArriveAsync(ClusterSession session, JobConfig job, DateTime now, CancellationToken cancellationToken)
    {
        if (await session.LastFiredAsync(job.Name, cancellationToken) is not { } fired)
        {
            // A new job starts counting now, in the cluster as on a host alone.
            await session.MarkScheduledAsync(job.Name, now, cancellationToken);
            return now;
        }
        DateTime? newest = null;
        for (DateTime? next = JobScheduler.NextAfter(job, fired); next is { } at && at <= now; next = JobScheduler.NextAfter(job, at))
        {
            newest = at;
        }
        if (newest is not { } missed)
        {
            return fired;
        }
        if (job.RepeatMissed || now - missed <= 2 * session.Options.LeaseTtl)
        {
            await FireAsync(session, job, missed, job.RepeatMissed ? "repeat-missed" : "schedule", cancellationToken);
        }
        else
        {
            // Not repeating: the missed times are passed over, for the whole cluster.
            await session.MarkScheduledAsync(job.Name, missed, cancellationToken);
        }
        return missed;
    }

    private async Task FireAsync(ClusterSession session, JobConfig job, DateTime scheduled, string reason, CancellationToken cancellationToken)
    {
        if (await session.FireAsync(job.Name, scheduled, reason, cancellationToken))
        {
            LogFired(logger, job.Name, scheduled, reason);
        }
    }

    /// <summary>Runs this host's share of every fire after the one it saw last; from the present when the service starts.</summary>
    private async Task FollowAsync(CancellationToken stoppingToken)
    {
        long seen = -1;
        while (!stoppingToken.IsCancellationRequested)
        {
            try
            {
                ClusterSession session = await membership.LiveSessionAsync(stoppingToken);
                using var lost = CancellationTokenSource.CreateLinkedTokenSource(stoppingToken, session.Lost);
                if (seen < 0)
                {
                    (_, seen) = await session.ReadFiresAsync(long.MaxValue - 1, lost.Token);
                }
                while (!lost.IsCancellationRequested)
                {
                    var (fires, readRevision) = await session.ReadFiresAsync(seen, lost.Token);
                    foreach (ClusterFire fire in fires)
                    {
                        Run(fire);
                    }
                    seen = readRevision;
                    await session.WaitForFiresAsync(readRevision, membership.LeaseTtl, lost.Token);
                }
            }
            catch (Exception e) when (!stoppingToken.IsCancellationRequested
                && e is OperationCanceledException or ClusterSessionLostException or ObjectDisposedException or Grpc.Core.RpcException)
            {
                LogFollowFailed(logger, e.Message);
                await Task.Delay(RetryDelay, stoppingToken).ContinueWith(_ => { }, TaskScheduler.Default);
            }
        }
    }

    private void Run(ClusterFire fire)
    {
        ServiceConfiguration config = engine.Config;
        if (!config.Cluster.Jobs.TryGetValue(fire.Job, out JobConfig? job))
        {
            LogUnknownJob(logger, fire.Job, fire.Scheduled);
            return;
        }
        if (tasks.RunningJob(job.Name) is { } running)
        {
            LogStillRunning(logger, job.Name, fire.Scheduled, running.Id);
            return;
        }
        ServiceTask task = engine.StartJob(job, config);
        task.Log("INFO", "", $"started by the cluster's scheduler on {fire.Leader} ({fire.Reason}, scheduled {fire.Scheduled:o})");
        LogStarted(logger, job.Name, fire.Scheduled, fire.Leader, task.Id);
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "Leading the cluster's scheduler (leader revision {Revision})")]
    private static partial void LogLeading(ILogger logger, long revision);

    [LoggerMessage(Level = LogLevel.Information, Message = "Not leading the cluster's scheduler: {Reason}")]
    private static partial void LogNotLeading(ILogger logger, string reason);

    [LoggerMessage(Level = LogLevel.Information, Message = "Fired cluster job {Job} scheduled at {Scheduled:o} ({Reason})")]
    private static partial void LogFired(ILogger logger, string job, DateTime scheduled, string reason);

    [LoggerMessage(Level = LogLevel.Information, Message = "Cluster job {Job} scheduled at {Scheduled:o} (fired by {Leader}) started: task {TaskId}")]
    private static partial void LogStarted(ILogger logger, string job, DateTime scheduled, string leader, string taskId);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Following the cluster's fires failed: {Reason}")]
    private static partial void LogFollowFailed(ILogger logger, string reason);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Cluster job {Job} scheduled at {Scheduled:o} was fired, but this host does not have it (its definitions were refused here?)")]
    private static partial void LogUnknownJob(ILogger logger, string job, DateTime scheduled);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Cluster job {Job} scheduled at {Scheduled:o} is due but still running here as task {TaskId}; this host skips it")]
    private static partial void LogStillRunning(ILogger logger, string job, DateTime scheduled, string taskId);
}
