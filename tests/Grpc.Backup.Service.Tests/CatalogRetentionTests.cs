using Google.Protobuf.WellKnownTypes;
using Grpc.Backup.Protocol;
using Grpc.Backup.Protocol.V1;
using Grpc.Backup.Service.Internal.Catalog;
using Grpc.Backup.Tests.Infrastructure;
using Microsoft.Data.Sqlite;

namespace Grpc.Backup.Service.Tests;

/// <summary>The catalog holds what exists and a bounded history, in a file that does not keep its largest size.</summary>
public sealed class CatalogRetentionTests : IDisposable
{
    private static readonly DateTime Now = new(2026, 6, 1, 12, 0, 0, DateTimeKind.Utc);
    private readonly TempDirectory _dir = new();

    public void Dispose() => _dir.Dispose();

    [Fact]
    public void A_backup_the_provider_no_longer_lists_takes_its_checksums_verification_and_manifest_with_it()
    {
        using var catalog = new CatalogDatabase(_dir.File("catalog.db"));
        catalog.ReplaceBackups("dir", null, [Entry("100", "100/a"), Entry("100", "100/b"), Entry("101", "101/c")]);
        foreach (string archive in (string[])["100/a", "100/b", "101/c"])
        {
            catalog.RecordChecksums("dir", archive, new Dictionary<string, string> { ["drive-scsi0"] = new string('a', 64) });
            catalog.RecordDigests("dir", archive, new Dictionary<string, RecordedDigest> { ["drive-scsi0"] = new(new string('b', 64), new ChunkDigestList(9 << 20)) });
            catalog.RecordContainerManifest("dir", archive, _dir.File(archive.Replace('/', '@') + ".json"));
            catalog.SetVerification(new VerificationRecord("dir", archive, "verified", "", Now, "t1"));
        }
        // The same archive name on another storage is another backup.
        catalog.ReplaceBackups("other", null, [Entry("100", "100/a")]);
        catalog.RecordChecksums("other", "100/a", new Dictionary<string, string> { ["drive-scsi0"] = "" });

        // A per-guest refresh after a prune of guest 100: only that guest's vanished backup goes.
        IReadOnlyList<string> manifests = catalog.ReplaceBackups("dir", "100", [Entry("100", "100/b")]);

        Assert.Equal([_dir.File("100@a.json")], manifests);
        Assert.Empty(catalog.Checksums("dir", "100/a"));
        Assert.Empty(catalog.Digests("dir", "100/a"));
        Assert.Equal(3, catalog.Digests("dir", "100/b")["drive-scsi0"].Chunks!.ChunkCount);
        Assert.Null(catalog.ContainerManifest("dir", "100/a"));
        Assert.False(catalog.Verifications("dir").ContainsKey("dir/100/a"));
        Assert.NotEmpty(catalog.Checksums("dir", "100/b"));
        Assert.NotEmpty(catalog.Checksums("dir", "101/c"));
        Assert.NotNull(catalog.ContainerManifest("dir", "101/c"));
        Assert.Equal(["dir/100/b", "dir/101/c"], catalog.Verifications("dir").Keys.Order(StringComparer.Ordinal));
        Assert.NotEmpty(catalog.Checksums("other", "100/a"));

        // A storage-wide refresh that lists nothing forgets the rest.
        Assert.Equal(2, catalog.ReplaceBackups("dir", null, []).Count);
        Assert.Empty(catalog.Verifications("dir"));
    }

    [Fact]
    public void History_keeps_the_newest_runs_per_job_and_nothing_older_than_the_age_limit_but_never_a_running_one()
    {
        using var catalog = new CatalogDatabase(_dir.File("catalog.db"));
        // nightly: one run a day for 10 days (the oldest still running); weekly: 2 runs, 40 and 100 days old.
        for (int day = 10; day >= 1; day--)
        {
            string id = $"n{day:D2}";
            catalog.RunStarted(id, "job", "nightly", "dir", Now.AddDays(-day));
            catalog.GuestStarted(id, "100", "b" + id, Now.AddDays(-day));
            if (day != 10)
            {
                catalog.RunEnded(id, "succeeded", "", Now.AddDays(-day).AddMinutes(5));
            }
        }
        foreach (int day in (int[])[40, 100])
        {
            catalog.RunStarted($"w{day}", "job", "weekly", "dir", Now.AddDays(-day));
            catalog.RunEnded($"w{day}", "succeeded", "", Now.AddDays(-day).AddMinutes(5));
        }

        IReadOnlyList<string> removed = catalog.PruneHistory(Now, keepDays: 90, keepRuns: 3);

        Assert.Equal(["n04", "n05", "n06", "n07", "n08", "n09", "w100"], removed.Order(StringComparer.Ordinal));
        IReadOnlyList<RunRecord> left = catalog.RecentRuns(100);
        Assert.Equal(["n01", "n02", "n03", "n10", "w40"], left.Select(r => r.TaskId));
        Assert.Single(left.Single(r => r.TaskId == "n01").Guests);
        // Guest results went with their runs: nothing refers to a removed task.
        using var connection = new SqliteConnection($"Data Source={_dir.File("catalog.db")};Pooling=false");
        connection.Open();
        using SqliteCommand count = connection.CreateCommand();
        count.CommandText = "SELECT count(*) FROM guest_results WHERE task_id NOT IN (SELECT task_id FROM job_runs)";
        Assert.Equal(0L, (long)count.ExecuteScalar()!);

        // 0 turns a limit off.
        Assert.Empty(catalog.PruneHistory(Now, keepDays: 0, keepRuns: 0));
        Assert.Equal(["w40"], catalog.PruneHistory(Now, keepDays: 30, keepRuns: 0));
    }

    [Fact]
    public void Compacting_truncates_the_write_ahead_log_and_gives_free_pages_back()
    {
        string path = _dir.File("catalog.db");
        using var catalog = new CatalogDatabase(path);
        for (int i = 0; i < 2000; i++)
        {
            string id = $"t{i:D5}";
            catalog.RunStarted(id, "job", "often", "dir", Now.AddSeconds(i));
            catalog.RunEnded(id, "failed", new string('x', 500), Now.AddSeconds(i + 1));
        }
        Assert.True(new FileInfo(path + "-wal").Length > 0, "the runs should be in the WAL");
        catalog.Compact();
        long full = new FileInfo(path).Length;

        Assert.Equal(0, new FileInfo(path + "-wal").Length);
        Assert.Equal(1990, catalog.PruneHistory(Now.AddSeconds(3000), keepDays: 0, keepRuns: 10).Count);
        catalog.Compact();

        Assert.Equal(0, new FileInfo(path + "-wal").Length);
        Assert.True(new FileInfo(path).Length < full / 4, $"the catalog kept {new FileInfo(path).Length} of {full} bytes after removing 99.5% of its rows");
    }

    private static BackupEntry Entry(string guest, string archive) => new()
    {
        ArchiveName = archive, GuestId = guest, GuestType = GuestType.Vm, BackupTime = Timestamp.FromDateTime(Now),
    };
}
