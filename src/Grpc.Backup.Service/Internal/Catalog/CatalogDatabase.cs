using System.Globalization;
using Microsoft.Data.Sqlite;

namespace Grpc.Backup.Service.Internal.Catalog;

/// <summary>
/// The service's SQLite database (<c>STATE/catalog.db</c>): the catalog (backups, job runs, per-guest results, what
/// verification compares with and its results), the
/// schedules' last firing, and the crash journal. One connection, used by one caller at a time; WAL with
/// <c>synchronous=FULL</c>, so a committed journal entry survives a kill -9 or a power cut.
/// </summary>
internal sealed partial class CatalogDatabase : IDisposable
{
    private const string Schema = """
        CREATE TABLE IF NOT EXISTS job_runs(
            task_id TEXT PRIMARY KEY, kind TEXT NOT NULL, job TEXT NOT NULL, storage TEXT NOT NULL,
            started TEXT NOT NULL, ended TEXT, state TEXT NOT NULL, error TEXT NOT NULL DEFAULT '');
        CREATE TABLE IF NOT EXISTS guest_results(
            task_id TEXT NOT NULL, guest_id TEXT NOT NULL, backup_id TEXT NOT NULL, archive TEXT NOT NULL DEFAULT '',
            state TEXT NOT NULL, error TEXT NOT NULL DEFAULT '', started TEXT NOT NULL, ended TEXT,
            duration_s REAL NOT NULL DEFAULT 0, bytes_read INTEGER NOT NULL DEFAULT 0, bytes_stored INTEGER NOT NULL DEFAULT 0,
            archive_size INTEGER NOT NULL DEFAULT 0, bitmap_modes TEXT NOT NULL DEFAULT '', consistency TEXT NOT NULL DEFAULT '',
            PRIMARY KEY(task_id, guest_id));
        CREATE TABLE IF NOT EXISTS backups(
            storage TEXT NOT NULL, archive TEXT NOT NULL, guest_id TEXT NOT NULL, guest_type TEXT NOT NULL,
            backup_time TEXT NOT NULL, stored_size INTEGER NOT NULL, restored_size INTEGER NOT NULL,
            protected INTEGER NOT NULL, notes TEXT NOT NULL, incremental INTEGER NOT NULL,
            PRIMARY KEY(storage, archive));
        CREATE TABLE IF NOT EXISTS schedule_state(job TEXT PRIMARY KEY, last_fire TEXT NOT NULL);
        CREATE TABLE IF NOT EXISTS journal(backup_id TEXT PRIMARY KEY, entry TEXT NOT NULL);
        CREATE TABLE IF NOT EXISTS volume_checksums(
            storage TEXT NOT NULL, archive TEXT NOT NULL, device TEXT NOT NULL, sha256 TEXT NOT NULL,
            PRIMARY KEY(storage, archive, device));
        CREATE TABLE IF NOT EXISTS volume_digests(
            storage TEXT NOT NULL, archive TEXT NOT NULL, device TEXT NOT NULL, algorithm TEXT NOT NULL, chunk_size INTEGER NOT NULL,
            value TEXT NOT NULL, chunks BLOB, PRIMARY KEY(storage, archive, device));
        CREATE TABLE IF NOT EXISTS container_manifests(
            storage TEXT NOT NULL, archive TEXT NOT NULL, path TEXT NOT NULL, PRIMARY KEY(storage, archive));
        CREATE TABLE IF NOT EXISTS verifications(
            storage TEXT NOT NULL, archive TEXT NOT NULL, state TEXT NOT NULL, detail TEXT NOT NULL, time TEXT NOT NULL,
            task_id TEXT NOT NULL, PRIMARY KEY(storage, archive));
        """;

    private readonly SqliteConnection _connection;
    private readonly Lock _lock = new();

    public CatalogDatabase(string path)
    {
        _connection = new SqliteConnection(new SqliteConnectionStringBuilder { DataSource = path, Pooling = false }.ToString());
        _connection.Open();
        File.SetUnixFileMode(path, UnixFileMode.UserRead | UnixFileMode.UserWrite);
        Execute("PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; PRAGMA busy_timeout=5000;");
        EnableIncrementalVacuum();
        Execute(Schema);
    }

    public void Dispose() => _connection.Dispose();

    private void Execute(string sql, params (string Name, object? Value)[] parameters)
    {
        lock (_lock)
        {
            using SqliteCommand command = Command(sql, parameters);
            command.ExecuteNonQuery();
        }
    }

    private List<T> Query<T>(string sql, Func<SqliteDataReader, T> read, params (string Name, object? Value)[] parameters)
    {
        lock (_lock)
        {
            using SqliteCommand command = Command(sql, parameters);
            using SqliteDataReader reader = command.ExecuteReader();
            var rows = new List<T>();
            while (reader.Read())
            {
                rows.Add(read(reader));
            }
            return rows;
        }
    }

    private SqliteCommand Command(string sql, (string Name, object? Value)[] parameters)
    {
        SqliteCommand command = _connection.CreateCommand();
#pragma warning disable CA2100 // the SQL text is a constant of this class; values are always parameters
        command.CommandText = sql;
#pragma warning restore CA2100
        foreach (var (name, value) in parameters)
        {
            command.Parameters.AddWithValue(name, value ?? DBNull.Value);
        }
        return command;
    }

    private static string Time(DateTime time) => time.ToUniversalTime().ToString("o", CultureInfo.InvariantCulture);

    private static DateTime ParseTime(string text) =>
        DateTime.Parse(text, CultureInfo.InvariantCulture, DateTimeStyles.AdjustToUniversal | DateTimeStyles.AssumeUniversal);
}
