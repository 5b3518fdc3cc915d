using System.Collections.Concurrent;

namespace Grpc.Backup.Service.Internal.Tasks;

/// <summary>The tasks of this service's lifetime, by id. Finished ones are kept (a few hundred) for status and watch.</summary>
internal sealed class TaskRegistry
{
    private const int KeepFinished = 200;
    private readonly ConcurrentDictionary<string, ServiceTask> _tasks = new(StringComparer.Ordinal);

    public ServiceTask Add(ServiceTask task)
    {
        _tasks[task.Id] = task;
        foreach (ServiceTask old in _tasks.Values.Where(t => t.IsFinished).OrderByDescending(t => t.Created).Skip(KeepFinished))
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
