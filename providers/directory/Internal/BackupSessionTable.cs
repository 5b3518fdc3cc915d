using System.Collections.Concurrent;
using System.Diagnostics.CodeAnalysis;
using Grpc.Backup.Provider;

namespace Grpc.Backup.Providers.Directory.Internal;

/// <summary>The jobs and guest backups this provider process knows about. Lost on restart, by design of the protocol.</summary>
internal sealed class BackupSessionTable
{
    private readonly ConcurrentDictionary<string, byte> _jobs = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, BackupSession> _sessions = new(StringComparer.Ordinal);

    public void AddJob(string jobId) => _jobs.TryAdd(jobId, 0);

    public bool HasJob(string jobId) => _jobs.ContainsKey(jobId);

    /// <summary>Forgets the job and returns its sessions, which the caller winds up.</summary>
    public IReadOnlyList<BackupSession> RemoveJob(string jobId)
    {
        _jobs.TryRemove(jobId, out _);
        var removed = new List<BackupSession>();
        foreach (BackupSession session in _sessions.Values.Where(s => s.JobId == jobId))
        {
            if (_sessions.TryRemove(new KeyValuePair<string, BackupSession>(session.BackupId, session)))
            {
                removed.Add(session);
            }
        }
        return removed;
    }

    public bool TryGet(string backupId, [NotNullWhen(true)] out BackupSession? session) =>
        _sessions.TryGetValue(backupId, out session);

    /// <summary>Adds <paramref name="session"/> unless one with its backup_id exists; returns the one in the table.</summary>
    public BackupSession GetOrAdd(BackupSession session) => _sessions.GetOrAdd(session.BackupId, session);

    /// <summary>Sessions whose backup is not finished yet, of any job.</summary>
    public IEnumerable<BackupSession> Unfinished() =>
        _sessions.Values.Where(s => s.Phase is not (BackupPhase.Completed or BackupPhase.Discarded));
}
