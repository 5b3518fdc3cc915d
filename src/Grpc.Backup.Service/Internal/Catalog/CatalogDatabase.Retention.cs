using Microsoft.Data.Sqlite;

namespace Grpc.Backup.Service.Internal.Catalog;

/// <summary>
/// What keeps the catalog the size of what exists, not of everything that ever happened: records of a backup go with
/// the backup, the run history is cut by the host's policy, and the file itself is checkpointed and vacuumed.
/// </summary>
internal sealed partial class CatalogDatabase
{
    /// <summary>
    /// Runs removed by <see cref="PruneHistory"/>: older than <paramref name="keepDays"/> days, or beyond the newest
    /// <paramref name="keepRuns"/> of their job (per kind and job). 0 turns a limit off; running runs always stay.
    /// Their guest results go with them. Returns the removed task ids (their task logs are the caller's to delete).
    /// </summary>
    public IReadOnlyList<string> PruneHistory(DateTime now, uint keepDays, uint keepRuns)
    {
        lock (_lock)
        {
            using var transaction = _connection.BeginTransaction();
            var removed = new List<string>();
            using (SqliteCommand select = Command("""
                SELECT task_id FROM (
                    SELECT task_id, started, ROW_NUMBER() OVER (PARTITION BY kind, job ORDER BY started DESC, task_id DESC) AS n
                    FROM job_runs WHERE state != 'running')
                WHERE ($days > 0 AND started < $cutoff) OR ($runs > 0 AND n > $runs)
                """,
                [("$days", (long)keepDays), ("$cutoff", Time(now - TimeSpan.FromDays(keepDays))), ("$runs", (long)keepRuns)]))
            {
                select.Transaction = transaction;
                using SqliteDataReader reader = select.ExecuteReader();
                while (reader.Read())
                {
                    removed.Add(reader.GetString(0));
                }
            }
            foreach (string taskId in removed)
            {
                foreach (string sql in (string[])["DELETE FROM guest_results WHERE task_id = $t", "DELETE FROM job_runs WHERE task_id = $t"])
                {
                    using SqliteCommand delete = Command(sql, [("$t", taskId)]);
                    delete.Transaction = transaction;
                    delete.ExecuteNonQuery();
                }
            }
            transaction.Commit();
            return removed;
        }
    }

    /// <summary>
    /// Returns free pages to the file system, then moves the write-ahead log into the database and truncates it to
    /// zero bytes: without it the WAL keeps the size of its largest burst and the file the size of its largest history.
    /// </summary>
    public void Compact()
    {
        lock (_lock)
        {
            // Vacuum first: it writes to the WAL, which the checkpoint then empties.
            using (SqliteCommand vacuum = Command("PRAGMA incremental_vacuum", []))
            {
                vacuum.ExecuteNonQuery();
            }
            using SqliteCommand checkpoint = Command("PRAGMA wal_checkpoint(TRUNCATE)", []);
            checkpoint.ExecuteNonQuery();
        }
    }

    /// <summary>
    /// Free pages are given back by <see cref="Compact"/> only in auto_vacuum=INCREMENTAL; a catalog created before
    /// that was set is converted once (a VACUUM, at start-up, before anything else uses the file).
    /// </summary>
    private void EnableIncrementalVacuum()
    {
        if (Query("PRAGMA auto_vacuum", r => r.GetInt64(0)).FirstOrDefault() != 2)
        {
            Execute("PRAGMA auto_vacuum=INCREMENTAL");
            Execute("VACUUM");
        }
    }

    private HashSet<string> ArchivesOf(SqliteTransaction transaction, string storage, string? guestId)
    {
        using SqliteCommand select = Command(guestId is null
            ? "SELECT archive FROM backups WHERE storage = $s"
            : "SELECT archive FROM backups WHERE storage = $s AND guest_id = $g", [("$s", storage), ("$g", guestId)]);
        select.Transaction = transaction;
        using SqliteDataReader reader = select.ExecuteReader();
        var archives = new HashSet<string>(StringComparer.Ordinal);
        while (reader.Read())
        {
            archives.Add(reader.GetString(0));
        }
        return archives;
    }

    /// <summary>Deletes what the catalog holds about backups that no longer exist; returns their manifest files.</summary>
    private List<string> ForgetBackups(SqliteTransaction transaction, string storage, IReadOnlyCollection<string> archives)
    {
        var manifests = new List<string>();
        foreach (string archive in archives)
        {
            using (SqliteCommand select = Command("SELECT path FROM container_manifests WHERE storage = $s AND archive = $a",
                [("$s", storage), ("$a", archive)]))
            {
                select.Transaction = transaction;
                if (select.ExecuteScalar() is string path)
                {
                    manifests.Add(path);
                }
            }
            foreach (string sql in (string[])[
                "DELETE FROM volume_checksums WHERE storage = $s AND archive = $a",
                "DELETE FROM volume_digests WHERE storage = $s AND archive = $a",
                "DELETE FROM container_manifests WHERE storage = $s AND archive = $a",
                "DELETE FROM verifications WHERE storage = $s AND archive = $a"])
            {
                using SqliteCommand delete = Command(sql, [("$s", storage), ("$a", archive)]);
                delete.Transaction = transaction;
                delete.ExecuteNonQuery();
            }
        }
        return manifests;
    }
}
