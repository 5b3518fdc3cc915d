using System.Text.Json;

namespace Grpc.Backup.Service.Internal.Catalog;

/// <summary>
/// The write-ahead journal: an entry is committed before a guest's backup touches the guest or the provider and
/// removed only after its teardown and BackupCleanup ran. Entries left at start-up are backups a crash interrupted.
/// </summary>
internal sealed partial class CatalogDatabase
{
    public void JournalBegin(JournalEntry entry) =>
        Execute("INSERT INTO journal(backup_id, entry) VALUES($b, $e)", ("$b", entry.BackupId), ("$e", JsonSerializer.Serialize(entry)));

    public void JournalEnd(string backupId) => Execute("DELETE FROM journal WHERE backup_id = $b", ("$b", backupId));

    public IReadOnlyList<JournalEntry> JournalEntries() =>
        Query("SELECT entry FROM journal", r => JsonSerializer.Deserialize<JournalEntry>(r.GetString(0))!);
}
