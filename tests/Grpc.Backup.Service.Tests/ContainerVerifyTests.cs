using System.Text;
using Grpc.Backup.Containers.Tests;
using Grpc.Backup.Service.Tests.Infrastructure;
using HostTool = Grpc.Backup.Containers.Tests.Host;
using static Grpc.Backup.Service.Tests.ScheduledJobTests;

namespace Grpc.Backup.Service.Tests;

/// <summary>
/// Container verification end to end: the job records the container's file manifest (walked as the container's root
/// in its user namespace); `grpc-backup verify` restores the archive into a scratch directory in a namespace with the
/// same id map and compares the manifest; a file's content changed inside the stored archive fails it, naming the file.
/// </summary>
public sealed class ContainerVerifyTests
{
    [Fact]
    public async Task A_container_backup_verifies_by_manifest_and_a_changed_file_in_the_archive_is_named()
    {
        RequiredTools.Ensure();
        using var dir = new TestDirectory();
        string rootfs = dir.CreateDirectory("rootfs");
        SampleRootfs.Build(rootfs);
        await using var service = ServiceProcess.Create();
        await using var provider = await DirectoryProviderProcess.StartAsync();
        service.WriteConfig("guests/101.conf", $"type: ct\nname: web\nrootfs: {rootfs}\nidmap: u 0 100000 65536\nidmap: g 0 100000 65536\n");
        service.AddDirectoryStorage("dir", provider);
        service.WriteConfig("jobs/ct.conf", $"storage: dir\nguests: 101\nmode: stop\nexclude-path: {string.Join(' ', SampleRootfs.Excludes)}\n");
        await service.StartAsync();
        HashSet<string> scratchBefore = Scratches();

        var reply = await service.CliJsonAsync("backup", "--job", "ct");
        Assert.Equal("TASK_STATE_SUCCEEDED", State(reply));
        string archive = reply.GetProperty("guests")[0].GetProperty("archiveName").GetString()!;
        Assert.Single(Directory.GetFiles(Path.Combine(service.StateDirectory, "manifests")));

        var (okExit, okOut, okErr) = await service.CliAsync("verify", "--storage", "dir", "--latest", "101");
        Assert.True(okExit == 0, okOut + okErr + service.Log);
        Assert.Contains($"{archive}: verified: the file manifest matches", okOut, StringComparison.Ordinal);

        // The stored archive decompressed, one byte of a file's content changed (tar headers stay valid), recompressed.
        string stored = Path.Combine(provider.RepositoryPath, archive, "rootfs.tar.zst");
        string tar = dir.Path + "/rootfs.tar";
        HostTool.Run("zstd", "-q", "-d", "-f", stored, "-o", tar);
        byte[] bytes = File.ReadAllBytes(tar);
        int at = bytes.AsSpan().IndexOf("<h1>hello</h1>"u8);
        Assert.True(at > 0);
        bytes[at + 4] = (byte)'j';
        File.WriteAllBytes(tar, bytes);
        HostTool.Run("zstd", "-q", "-f", tar, "-o", stored);

        var (badExit, badOut, _) = await service.CliAsync("verify", "--storage", "dir", archive);
        Assert.Equal(1, badExit);
        Assert.Contains($"{archive}: failed: /var/www/index.html: content differs", badOut, StringComparison.Ordinal);
        var (_, showOut, _) = await service.CliAsync("show", archive, "--storage", "dir");
        Assert.Contains("verification: failed", showOut, StringComparison.Ordinal);
        Assert.Equal(scratchBefore, Scratches());
    }

    /// <summary>Verification scratch directories in the default tmp-dir (other tests' may exist; none of ours may stay).</summary>
    private static HashSet<string> Scratches() =>
        [.. Directory.EnumerateDirectories("/var/tmp", "grpc-backupd-verify-*")];
}
