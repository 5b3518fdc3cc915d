using System.Collections.Concurrent;
using System.Diagnostics.CodeAnalysis;

namespace Grpc.Backup.Providers.Borg.Internal;

/// <summary>The jobs and guest backups this provider process knows about. Lost on restart, by design of the protocol.</summary>
internal sealed class BackupSessionTable
{
    private readonly ConcurrentDictionary<string, byte> _jobs = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, BackupSession> _sessions = new(StringComparer.Ordinal);

    public void AddJob(string jobId) => _jobs.TryAdd(jobId, 0);

    public bool HasJob(string jobId) => _jobs.ContainsKey(jobId);

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
