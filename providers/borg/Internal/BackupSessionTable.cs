using System.Collections.Concurrent;
using System.Diagnostics.CodeAnalysis;

namespace Grpc.Backup.Providers.Borg.Internal;

/// <summary>
/// The jobs and guest backups this provider process knows about. Lost on restart, by design of the protocol. Each job
/// keeps the archive names JobInit listed: backups of the job are named and their incremental bases chosen from it,
/// instead of starting borg again for every guest (archives this process adds meanwhile are its own sessions; the
/// base of a REUSE volume is checked again by the backup itself, under the repository lock).
/// </summary>
internal sealed class BackupSessionTable
{
    private readonly ConcurrentDictionary<string, IReadOnlySet<string>> _jobs = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, BackupSession> _sessions = new(StringComparer.Ordinal);

    public void AddJob(string jobId, IReadOnlySet<string> archivesAtStart) => _jobs[jobId] = archivesAtStart;

    public bool HasJob(string jobId) => _jobs.ContainsKey(jobId);

    /// <summary>The borg archive names the repository held at the job's JobInit (empty for an unknown job).</summary>
    public IReadOnlySet<string> ArchivesAtJobStart(string jobId) =>
        _jobs.TryGetValue(jobId, out IReadOnlySet<string>? names) ? names : new HashSet<string>();

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
