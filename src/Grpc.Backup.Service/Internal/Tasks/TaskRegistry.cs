using System.Collections.Concurrent;
using Grpc.Backup.Service.Internal.Configuration;

namespace Grpc.Backup.Service.Internal.Tasks;

/// <summary>
/// The tasks of this service's lifetime, by id. Finished ones are kept for status and watch, as many as the history
/// policy keeps runs per job (<c>history-keep-runs</c>), at least 10 and at most 200: each holds its log lines, so
/// this is what the service's memory settles at.
/// </summary>
internal sealed class TaskRegistry(ServiceConfiguration config)
{
    private readonly int _keepFinished = (int)Math.Clamp(config.Host.HistoryKeepRuns == 0 ? 200 : config.Host.HistoryKeepRuns, 10, 200);
    private readonly ConcurrentDictionary<string, ServiceTask> _tasks = new(StringComparer.Ordinal);

    public ServiceTask Add(ServiceTask task)
    {
        _tasks[task.Id] = task;
        foreach (ServiceTask old in _tasks.Values.Where(t => t.IsFinished).OrderByDescending(t => t.Created).Skip(_keepFinished))
        {
            if (_tasks.TryRemove(old.Id, out _))
            {
                old.Dispose();
            }
        }
        return task;
    }

    public ServiceTask? Find(string id) => _tasks.GetValueOrDefault(id);

    public IReadOnlyList<ServiceTask> All => [.. _tasks.Values.OrderBy(t => t.Created)];

    /// <summary>The running (unfinished) task of a job, if any: a job never runs twice at once.</summary>
    public ServiceTask? RunningJob(string job) => _tasks.Values.FirstOrDefault(t => t.Kind is "job" or "verify" && t.Job == job && !t.IsFinished);
}
