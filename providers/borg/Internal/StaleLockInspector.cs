using Grpc.Backup.Provider;
using System.Text.Json;

namespace Grpc.Backup.Providers.Borg.Internal;

/// <summary>
/// Borg 1.2 removes a lock whose owner was a process of this host that no longer runs, silently, on the next command.
/// The operator decides that here: without <c>--break-stale-locks</c>, such a lock on a local repository is reported
/// as FAILED_PRECONDITION REPOSITORY_LOCKED before borg runs, naming the dead process. Locks of live processes or of
/// other hosts are left to borg's <c>--lock-wait</c> (ABORTED REPOSITORY_LOCKED, retry later). Remote repositories
/// are locked by <c>borg serve</c> on the server, which releases the lock when the connection ends.
/// </summary>
internal static class StaleLockInspector
{
    public static void ThrowIfStale(BorgProviderOptions options)
    {
        if (options.IsRemote || options.BreakStaleLocks)
        {
            return;
        }
        string roster = Path.Join(options.Repository, "lock.roster");
        string exclusive = Path.Join(options.Repository, "lock.exclusive");
        var owners = new List<(string Host, long Pid)>();
        try
        {
            if (File.Exists(roster))
            {
                using var document = JsonDocument.Parse(File.ReadAllBytes(roster));
                foreach (JsonProperty kind in document.RootElement.EnumerateObject())
                {
                    foreach (JsonElement owner in kind.Value.EnumerateArray())
                    {
                        owners.Add((owner[0].GetString() ?? "", owner[1].GetInt64()));
                    }
                }
            }
            if (Directory.Exists(exclusive))
            {
                // Entries are named HOST.PID-THREAD.
                foreach (string entry in Directory.EnumerateFileSystemEntries(exclusive).Select(e => Path.GetFileName(e)))
                {
                    int dot = entry.LastIndexOf('.');
                    int dash = entry.LastIndexOf('-');
                    if (dot > 0 && dash > dot && long.TryParse(entry.AsSpan(dot + 1, dash - dot - 1), out long pid))
                    {
                        owners.Add((entry[..dot], pid));
                    }
                }
            }
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or JsonException or InvalidOperationException
            or IndexOutOfRangeException or FormatException)
        {
            return; // borg itself will judge a lock we cannot read
        }
        foreach ((string host, long pid) in owners)
        {
            if (host == BorgCli.HostId && !IsRunning(pid))
            {
                throw ContractErrors.RepositoryLocked(
                    $"the repository {options.Repository} holds a stale lock of borg process {pid} on this host, which no longer runs "
                    + "(killed during an operation). Check the repository (borg check), then remove the lock with `borg break-lock "
                    + "REPOSITORY`, or start the provider with --break-stale-locks true to let borg remove such locks itself");
            }
        }
    }

    /// <summary>A killed process stays in /proc as a zombie until its parent reaps it; that one no longer runs either.</summary>
    private static bool IsRunning(long pid)
    {
        try
        {
            string stat = File.ReadAllText($"/proc/{pid}/stat");
            int close = stat.LastIndexOf(')');
            return close < 0 || close + 2 >= stat.Length || stat[close + 2] is not ('Z' or 'X');
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return false;
        }
    }
}
