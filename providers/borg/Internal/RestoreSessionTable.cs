using System.Collections.Concurrent;
using System.Diagnostics.CodeAnalysis;

namespace Grpc.Backup.Providers.Borg.Internal;

/// <summary>The restores in progress. Delete and prune ask it whether an archive is in use.</summary>
internal sealed class RestoreSessionTable
{
    private readonly ConcurrentDictionary<string, RestoreSession> _sessions = new(StringComparer.Ordinal);

    public RestoreSession GetOrAdd(RestoreSession session) => _sessions.GetOrAdd(session.RestoreId, session);

    public bool TryGet(string restoreId, [NotNullWhen(true)] out RestoreSession? session) => _sessions.TryGetValue(restoreId, out session);

    public bool TryRemove(string restoreId, [NotNullWhen(true)] out RestoreSession? session) => _sessions.TryRemove(restoreId, out session);

    public bool IsInUse(BorgArchiveName archive) => _sessions.Values.Any(s => s.Archive == archive);
}
