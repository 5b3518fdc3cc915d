using System.Security.Cryptography;
using System.Text.Json;
using Grpc.Backup.Protocol;
using Grpc.Backup.Service.Tests.Infrastructure;
using Microsoft.Data.Sqlite;
using static Grpc.Backup.Service.Tests.ScheduledJobTests;

namespace Grpc.Backup.Service.Tests;

/// <summary>
/// Restore verification end to end: a real QEMU demo guest backed up by grpc-backupd into the directory provider, which
/// reports each volume's chunk digests as it stores; `grpc-backup verify` restores into a scratch directory, hashes
/// and compares chunk by chunk; a byte flipped in the repository makes it fail naming the volume and the chunk's offset;
/// a backup recorded with only a content_sha256 (before chunk digests) still verifies; a scheduled verify job checks the
/// backups never verified; the scratch is always gone afterwards.
/// </summary>
public sealed class VerifyTests
{
    [Fact]
    public async Task Verify_passes_on_an_intact_backup_fails_naming_the_corrupted_volume_and_runs_on_a_schedule()
    {
        await using var service = ServiceProcess.Create();
        await using var guest = await DemoGuestProcess.StartAsync(service.Root.File("guest"));
        await using var provider = await DirectoryProviderProcess.StartAsync();
        string scratchRoot = service.Root.File("tmp");
        Directory.CreateDirectory(scratchRoot);
        service.AddGuest(guest);
        service.AddDirectoryStorage("dir", provider);
        service.WriteConfig("host.conf", $"tmp-dir: {scratchRoot}\n");
        service.WriteConfig("jobs/daily.conf", $"storage: dir\nguests: 100\nfleecing-dir: {service.FleecingDirectory}\n");
        await service.StartAsync();

        var (backupExit, backupOut, backupErr) = await service.CliAsync("backup", "--job", "daily");
        Assert.True(backupExit == 0, backupOut + backupErr);
        string first = Backups(await service.CliJsonAsync("list", "--storage", "dir")).Single().GetProperty("archiveName").GetString()!;

        // Intact: verified, and the catalog says so.
        var (okExit, okOut, okErr) = await service.CliAsync("verify", "--storage", "dir", "--latest", "100");
        Assert.True(okExit == 0, okOut + okErr + service.Log);
        Assert.Contains($"{first}: verified: digest matches for ", okOut, StringComparison.Ordinal);
        Assert.Equal("VERIFICATION_STATE_VERIFIED", VerificationState(await service.CliJsonAsync("list", "--storage", "dir"), first));
        Assert.Empty(Directory.EnumerateFileSystemEntries(scratchRoot));

        // One byte flipped in the stored image: verify fails and names the volume and the chunk the byte is in.
        string image = Directory.EnumerateFiles(provider.RepositoryPath, "*.raw", SearchOption.AllDirectories).Order(StringComparer.Ordinal).First();
        string device = Path.GetFileNameWithoutExtension(image);
        string intactSha256 = Sha256Of(image);
        long flipped = new FileInfo(image).Length / 2 + 12345;
        long chunk = flipped / ChunkDigestList.ChunkSize * ChunkDigestList.ChunkSize;
        FlipByte(image, flipped);
        var (badExit, badOut, _) = await service.CliAsync("verify", "--storage", "dir", first);
        Assert.Equal(1, badExit);
        Assert.Contains($"{first}: failed: {device}: the chunk at offset {chunk} ", badOut, StringComparison.Ordinal);
        JsonElement listed = await service.CliJsonAsync("list", "--storage", "dir");
        Assert.Equal("VERIFICATION_STATE_FAILED", VerificationState(listed, first));
        Assert.Contains(device, Backups(listed).Single().GetProperty("verification").GetProperty("detail").GetString(), StringComparison.Ordinal);
        var (showExit, showOut, _) = await service.CliAsync("show", first);
        Assert.Equal(0, showExit);
        Assert.Contains("verification: failed", showOut, StringComparison.Ordinal);
        Assert.Empty(Directory.EnumerateFileSystemEntries(scratchRoot));

        // The same backup as a catalog from before chunk digests holds it (content_sha256 only): it verifies as
        // before, and the flipped byte still fails it.
        FlipByte(image, flipped);
        await service.StopAsync();
        RecordOnlyContentSha256(service.StateDirectory, first, device, intactSha256);
        await service.StartAsync();
        var (oldExit, oldOut, oldErr) = await service.CliAsync("verify", "--storage", "dir", first);
        Assert.True(oldExit == 0, oldOut + oldErr + service.Log);
        Assert.Contains($"{first}: verified: sha256 matches for {device}", oldOut, StringComparison.Ordinal);
        FlipByte(image, flipped);
        var (oldBadExit, oldBadOut, _) = await service.CliAsync("verify", "--storage", "dir", first);
        Assert.Equal(1, oldBadExit);
        Assert.Contains($"{first}: failed: {device}: restored sha256 ", oldBadOut, StringComparison.Ordinal);
        // Intact again before the next backup stacks on this image: its chunk digests come from this backup's list.
        FlipByte(image, flipped);

        // A second backup, then a scheduled verify job for the backups never verified: it takes the new one only.
        Assert.Equal(0, (await service.CliAsync("backup", "--job", "daily")).ExitCode);
        await service.StopAsync();
        using var receiver = HttpReceiver.Start();
        Directory.CreateDirectory(Path.Combine(service.ConfigDirectory, "notifications"));
        service.WriteConfig("notifications/ops.conf", $"type: webhook\nurl: {receiver.Url}verify\n");
        service.WriteConfig("jobs/check.conf", "kind: verify\nverify: unverified\nstorage: dir\nguests: 100\nschedule: */2 * * * * *\nnotify: ops\n");
        await service.StartAsync();
        // A bound for a hang, not for speed: the verify is a whole restore and comparison.
        var deadline = DateTime.UtcNow + TimeSpan.FromMinutes(10);
        while (!Runs(await service.CliJsonAsync("jobs", "runs")).Any(r => Job(r) == "check" && State(r) == "TASK_STATE_SUCCEEDED"))
        {
            Assert.True(DateTime.UtcNow < deadline, "the scheduled verify did not run: " + service.Log);
            await Task.Delay(500);
        }
        // The verify run reports its end like a backup job.
        ReceivedRequest report = await receiver.WaitForAsync("/verify", TimeSpan.FromSeconds(30));
        using (JsonDocument body = JsonDocument.Parse(report.Body))
        {
            Assert.Equal(("verify-end", "check"), (body.RootElement.GetProperty("event").GetString(), body.RootElement.GetProperty("job").GetString()));
        }
        await service.StopAsync();
        await service.StartAsync();
        listed = await service.CliJsonAsync("list", "--storage", "dir");
        string second = Backups(listed).Select(b => b.GetProperty("archiveName").GetString()!).Single(a => a != first);
        Assert.Equal("VERIFICATION_STATE_VERIFIED", VerificationState(listed, second));
        Assert.Equal("VERIFICATION_STATE_FAILED", VerificationState(listed, first));
        JsonElement checkRun = Runs(await service.CliJsonAsync("jobs", "runs")).First(r => Job(r) == "check");
        Assert.Equal("verify", checkRun.GetProperty("kind").GetString());
        Assert.Empty(Directory.EnumerateFileSystemEntries(scratchRoot));
    }

    // One-off tasks have no job, and protobuf JSON leaves the empty field out.
    private static string Job(JsonElement run) => run.TryGetProperty("job", out JsonElement job) ? job.GetString()! : "";

    private static string VerificationState(JsonElement listed, string archive) =>
        Backups(listed).Single(b => b.GetProperty("archiveName").GetString() == archive) is var b && b.TryGetProperty("verification", out JsonElement v)
            ? v.TryGetProperty("state", out JsonElement s) ? s.GetString()! : "VERIFICATION_STATE_UNSPECIFIED"
            : "never";

    private static string Sha256Of(string path)
    {
        using FileStream stream = File.OpenRead(path);
        return Convert.ToHexStringLower(SHA256.HashData(stream));
    }

    /// <summary>Rewrites the catalog as a service from before chunk digests left it: a content_sha256, no digest.</summary>
    private static void RecordOnlyContentSha256(string stateDirectory, string archive, string device, string sha256)
    {
        using var db = new SqliteConnection($"Data Source={Path.Combine(stateDirectory, "catalog.db")};Pooling=false");
        db.Open();
        using SqliteCommand command = db.CreateCommand();
        command.CommandText = "DELETE FROM volume_digests WHERE archive = $a; "
            + "INSERT OR REPLACE INTO volume_checksums(storage, archive, device, sha256) VALUES('dir', $a, $d, $h)";
        command.Parameters.AddWithValue("$a", archive);
        command.Parameters.AddWithValue("$d", device);
        command.Parameters.AddWithValue("$h", sha256);
        Assert.True(command.ExecuteNonQuery() >= 2, "the catalog held no digest to replace");
    }

    private static void FlipByte(string path, long offset)
    {
        using var file = new FileStream(path, FileMode.Open, FileAccess.ReadWrite);
        file.Position = offset;
        int value = file.ReadByte();
        file.Position = offset;
        file.WriteByte((byte)(value ^ 0xff));
    }
}
