using System.Collections.Concurrent;
using System.Diagnostics.CodeAnalysis;

namespace Grpc.Backup.Providers.Borg.Internal;

/// <summary>
/// The jobs and guest backups this provider process knows about. Lost on restart, by design of the protocol. Each job
/// keeps the archive names JobInit listed, plus the archives the job itself stored since: backups of the job are named
/// and their incremental bases chosen from it, instead of starting borg again for every guest (the base of a REUSE
/// volume is checked again by the backup itself, under the repository lock).
/// </summary>
internal sealed class BackupSessionTable
{
    private readonly ConcurrentDictionary<string, HashSet<string>> _jobs = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, BackupSession> _sessions = new(StringComparer.Ordinal);

    public void AddJob(string jobId, IReadOnlySet<string> archivesAtStart) => _jobs[jobId] = new HashSet<string>(archivesAtStart, StringComparer.Ordinal);

    /// <summary>
    /// Adds an archive the job has just committed: a later backup of the same guest in the same job (a full, then an
    /// incremental) must find it as its base.
    /// </summary>
    public void RecordStored(string jobId, string borgName)
    {
        if (_jobs.TryGetValue(jobId, out HashSet<string>? names))
        {
            lock (names)
            {
                names.Add(borgName);
            }
        }
    }

    public bool HasJob(string jobId) => _jobs.ContainsKey(jobId);

    /// <summary>The borg archive names the repository held at the job's JobInit and those the job stored since (a copy; empty for an unknown job).</summary>
    public IReadOnlySet<string> ArchivesAtJobStart(string jobId)
    {
        if (!_jobs.TryGetValue(jobId, out HashSet<string>? names))
        {
            return new HashSet<string>();
        }
        lock (names)
        {
            return new HashSet<string>(names, StringComparer.Ordinal);
        }
    }

    public IReadOnlyList<BackupSession> RemoveJob(string jobId)
    {
        _jobs.TryRemove(jobId, out _);
        return _sessions.Values.Where(s => s.JobId == jobId).ToList();
    }

    public bool TryGet(string backupId, [NotNullWhen(true)] out BackupSession? session) => _sessions.TryGetValue(backupId, out session);

    public BackupSession GetOrAdd(BackupSession session) => _sessions.GetOrAdd(session.BackupId, session);

    /// <summary>True when a backup of this provider process already uses the archive name.</summary>
    public bool Uses(BorgArchiveName archive) => _sessions.Values.Any(s => s.Archive == archive);
}
