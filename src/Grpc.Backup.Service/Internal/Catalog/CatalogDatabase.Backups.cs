using Grpc.Backup.Protocol.V1;

namespace Grpc.Backup.Service.Internal.Catalog;

/// <summary>The backups each storage holds, as its provider last listed them.</summary>
internal sealed partial class CatalogDatabase
{
    /// <summary>
    /// Replaces what the catalog knows of one storage (or one guest of it) with the provider's list. Backups that were
    /// listed before and are not now take their records with them (<see cref="ForgetBackups"/>); returns the manifest
    /// files that belonged to them, for the caller to delete.
    /// </summary>
    public IReadOnlyList<string> ReplaceBackups(string storage, string? guestId, IReadOnlyList<BackupEntry> entries)
    {
        lock (_lock)
        {
            using var transaction = _connection.BeginTransaction();
            HashSet<string> before = ArchivesOf(transaction, storage, guestId);
            using (var delete = Command(guestId is null ? "DELETE FROM backups WHERE storage = $s" : "DELETE FROM backups WHERE storage = $s AND guest_id = $g",
                [("$s", storage), ("$g", guestId)]))
            {
                delete.Transaction = transaction;
                delete.ExecuteNonQuery();
            }
            foreach (BackupEntry e in entries)
            {
                using var insert = Command("""
                    INSERT OR REPLACE INTO backups(storage, archive, guest_id, guest_type, backup_time, stored_size, restored_size, protected, notes, incremental)
                    VALUES($s, $a, $g, $t, $time, $ss, $rs, $p, $n, $i)
                    """,
                    [("$s", storage), ("$a", e.ArchiveName), ("$g", e.GuestId), ("$t", e.GuestType.ToString()),
                     ("$time", Time(e.BackupTime?.ToDateTime() ?? DateTime.UnixEpoch)), ("$ss", (long)e.StoredSizeBytes),
                     ("$rs", (long)e.RestoredSizeBytes), ("$p", e.Protected ? 1 : 0), ("$n", e.Notes), ("$i", e.Incremental ? 1 : 0)]);
                insert.Transaction = transaction;
                insert.ExecuteNonQuery();
            }
            before.ExceptWith(entries.Select(e => e.ArchiveName));
            IReadOnlyList<string> manifests = ForgetBackups(transaction, storage, before);
            transaction.Commit();
            return manifests;
        }
    }

    public IReadOnlyList<BackupRecord> Backups(string? storage, string? guestId) =>
        Query("""
            SELECT storage, archive, guest_id, backup_time, stored_size, restored_size, protected, notes, incremental, guest_type FROM backups
            WHERE ($s IS NULL OR storage = $s) AND ($g IS NULL OR guest_id = $g) ORDER BY backup_time DESC, archive DESC
            """,
            r => new BackupRecord(r.GetString(0), r.GetString(1), r.GetString(2), ParseTime(r.GetString(3)), (ulong)r.GetInt64(4),
                (ulong)r.GetInt64(5), r.GetInt64(6) != 0, r.GetString(7), r.GetInt64(8) != 0, r.GetString(9)),
            ("$s", storage), ("$g", guestId));

    public DateTime? LastFire(string job) =>
        Query("SELECT last_fire FROM schedule_state WHERE job = $j", r => ParseTime(r.GetString(0)), ("$j", job)).Cast<DateTime?>().FirstOrDefault();

    public void SetLastFire(string job, DateTime time) =>
        Execute("INSERT OR REPLACE INTO schedule_state(job, last_fire) VALUES($j, $t)", ("$j", job), ("$t", Time(time)));
}
