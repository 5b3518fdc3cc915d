using Microsoft.Data.Sqlite;

namespace Grpc.Backup.Service.Internal.Catalog;

/// <summary>Job runs and per-guest results.</summary>
internal sealed partial class CatalogDatabase
{
    public void RunStarted(string taskId, string kind, string job, string storage, DateTime started) =>
        Execute("INSERT INTO job_runs(task_id, kind, job, storage, started, state) VALUES($t, $k, $j, $s, $st, 'running')",
            ("$t", taskId), ("$k", kind), ("$j", job), ("$s", storage), ("$st", Time(started)));

    public void RunEnded(string taskId, string state, string error, DateTime ended) =>
        Execute("UPDATE job_runs SET state = $state, error = $e, ended = $end WHERE task_id = $t",
            ("$t", taskId), ("$state", state), ("$e", error), ("$end", Time(ended)));

    public void GuestStarted(string taskId, string guestId, string backupId, DateTime started) =>
        Execute("INSERT OR REPLACE INTO guest_results(task_id, guest_id, backup_id, state, started) VALUES($t, $g, $b, 'running', $st)",
            ("$t", taskId), ("$g", guestId), ("$b", backupId), ("$st", Time(started)));

    public void GuestEnded(string taskId, GuestRecord result) =>
        Execute("""
            UPDATE guest_results SET archive = $a, state = $state, error = $e, ended = $end, duration_s = $d, bytes_read = $r,
                bytes_stored = $bs, archive_size = $size, bitmap_modes = $m, consistency = $c
            WHERE task_id = $t AND guest_id = $g
            """,
            ("$t", taskId), ("$g", result.GuestId), ("$a", result.Archive), ("$state", result.State), ("$e", result.Error),
            ("$end", Time(result.Ended)), ("$d", result.DurationSeconds), ("$r", (long)result.BytesRead), ("$bs", (long)result.BytesStored),
            ("$size", (long)result.ArchiveSize), ("$m", string.Join(' ', result.BitmapModes)), ("$c", result.Consistency));

    /// <summary>Runs and guests that were still "running" when the service died become "interrupted".</summary>
    public int MarkInterrupted(DateTime now)
    {
        int count = Query("SELECT task_id FROM job_runs WHERE state = 'running'", r => r.GetString(0)).Count;
        Execute("UPDATE job_runs SET state = 'failed', error = 'interrupted: the service stopped during the run', ended = $n WHERE state = 'running'",
            ("$n", Time(now)));
        Execute("UPDATE guest_results SET state = 'failed', error = 'interrupted: the service stopped during the backup', ended = $n WHERE state = 'running'",
            ("$n", Time(now)));
        return count;
    }

    private const string RunColumns = "SELECT task_id, kind, job, storage, started, ended, state, error FROM job_runs";

    public IReadOnlyList<RunRecord> RecentRuns(int limit) =>
        Query($"{RunColumns} ORDER BY started DESC LIMIT $l", ReadRun, ("$l", limit));

    /// <summary>One run as the catalog has it now, or null.</summary>
    public RunRecord? Run(string taskId) => Query($"{RunColumns} WHERE task_id = $t", ReadRun, ("$t", taskId)).FirstOrDefault();

    private RunRecord ReadRun(SqliteDataReader r) =>
        new(r.GetString(0), r.GetString(1), r.GetString(2), r.GetString(3), ParseTime(r.GetString(4)),
            r.IsDBNull(5) ? null : ParseTime(r.GetString(5)), r.GetString(6), r.GetString(7), GuestsOf(r.GetString(0)));

    public RunRecord? LastRunOf(string job) =>
        Query("SELECT task_id FROM job_runs WHERE job = $j AND kind IN ('job', 'verify') ORDER BY started DESC LIMIT 1", r => r.GetString(0), ("$j", job))
            .Select(id => RecentRuns(1000).FirstOrDefault(r => r.TaskId == id)).FirstOrDefault();

    private List<GuestRecord> GuestsOf(string taskId) =>
        Query("""
            SELECT guest_id, archive, state, error, ended, duration_s, bytes_read, bytes_stored, archive_size, bitmap_modes, consistency
            FROM guest_results WHERE task_id = $t ORDER BY guest_id
            """,
            r => new GuestRecord(r.GetString(0), r.GetString(1), r.GetString(2), r.GetString(3), r.IsDBNull(4) ? DateTime.MinValue : ParseTime(r.GetString(4)),
                r.GetDouble(5), (ulong)r.GetInt64(6), (ulong)r.GetInt64(7), (ulong)r.GetInt64(8),
                r.GetString(9).Split(' ', StringSplitOptions.RemoveEmptyEntries), r.GetString(10)),
            ("$t", taskId));
}
