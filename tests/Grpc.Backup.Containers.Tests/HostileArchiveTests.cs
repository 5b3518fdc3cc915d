namespace Grpc.Backup.Containers.Tests;

public sealed class HostileArchiveTests
{
    private static readonly IdMap Map = IdMap.CreateDefault();

    public static TheoryData<string> RefusedCases => new(HostileArchives.Refused.Keys);

    [Theory]
    [MemberData(nameof(RefusedCases))]
    public async Task The_validator_refuses_it_with_a_clear_message(string name)
    {
        RequiredTools.Ensure();
        HostileCase hostile = HostileArchives.Refused[name];
        TarValidationOptions options = (hostile.Options ?? new TarValidationOptions()) with { IdMap = Map };

        TarArchiveRejectedException e = await Assert.ThrowsAsync<TarArchiveRejectedException>(
            () => TarArchiveValidator.ValidateAsync(new MemoryStream(hostile.Build("/tmp/outside")), options));

        Assert.Contains(hostile.Expected, e.Message, StringComparison.Ordinal);
    }

    [Theory]
    [MemberData(nameof(RefusedCases))]
    public Task Restore_refuses_it_removes_the_target_and_writes_nothing_outside(string name) => AssertRefusedAsync(name, paths: null);

    /// <summary>A file restore of the whole tree (<c>grpc-backup files get / --to</c>) reads and refuses exactly as a restore.</summary>
    [Theory]
    [MemberData(nameof(RefusedCases))]
    public Task A_file_restore_refuses_it_removes_the_target_and_writes_nothing_outside(string name) => AssertRefusedAsync(name, paths: ["/"]);

    [Theory]
    [MemberData(nameof(RefusedCases))]
    public async Task A_tar_of_the_whole_tree_is_refused_with_the_same_message(string name)
    {
        HostileCase hostile = HostileArchives.Refused[name];
        TarArchiveRejectedException e = await Assert.ThrowsAsync<TarArchiveRejectedException>(() => ArchiveFiles.WriteTarAsync(
            new MemoryStream(hostile.Build("/tmp/outside")), ["."], Stream.Null, (hostile.Options ?? new TarValidationOptions()) with { IdMap = Map }));
        Assert.Contains(hostile.Expected, e.Message, StringComparison.Ordinal);
    }

    private static async Task AssertRefusedAsync(string name, IReadOnlyList<string>? paths)
    {
        RequiredTools.Ensure();
        using var dir = new TestDirectory();
        string outside = dir.CreateDirectory("outside");
        File.WriteAllText(Path.Combine(outside, "keep"), "must survive\n");
        Host.Chown(outside, 100000, 100000);
        string target = dir.RestoreTarget("target");
        Dictionary<string, string> before = TreeListing.OnHost(dir.Path);
        HostileCase hostile = HostileArchives.Refused[name];

        TarArchiveRejectedException e = await Assert.ThrowsAsync<TarArchiveRejectedException>(() => ContainerRestore.RunAsync(
            new MemoryStream(hostile.Build(outside)),
            new ContainerRestoreOptions { IdMap = Map, TargetDirectory = target, Paths = paths, Validation = hostile.Options ?? new TarValidationOptions() }));

        Assert.Contains(hostile.Expected, e.Message, StringComparison.Ordinal);
        Assert.False(Directory.Exists(target), "the target was left behind");
        Assert.Equal(before.OrderBy(p => p.Key), TreeListing.OnHost(dir.Path).OrderBy(p => p.Key));
        Assert.False(File.Exists(Path.Combine("/tmp", HostileArchives.Marker)));
        Assert.False(File.Exists(Path.Combine("/etc", HostileArchives.Marker)));
    }

    [Fact]
    public async Task Device_nodes_are_skipped_with_a_warning_and_the_rest_is_restored()
    {
        RequiredTools.Ensure();
        using var dir = new TestDirectory();
        byte[] archive = HostileArchives.Ok().Directory("dev/").Header("dev/null", '3', 0).Header("dev/sda", '4', 0).File("after.txt", "after\n").End().ToArray();
        string target = dir.RestoreTarget("target");

        ContainerRestoreResult result = await ContainerRestore.RunAsync(new MemoryStream(archive), new ContainerRestoreOptions { IdMap = Map, TargetDirectory = target });

        Assert.Equal(["dev/null", "dev/sda"], result.Report.SkippedMembers);
        Assert.Contains(result.Warnings, w => w.Contains("skipped device node 'dev/null'", StringComparison.Ordinal));
        Assert.Empty(Directory.EnumerateFileSystemEntries(Path.Combine(target, "dev")));
        Assert.Equal("after\n", File.ReadAllText(Path.Combine(target, "after.txt")));
        Assert.Equal("fine\n", File.ReadAllText(Path.Combine(target, "ok.txt")));
    }

    [Fact]
    public async Task Fifos_and_setuid_files_are_restored_owned_by_the_containers_root()
    {
        RequiredTools.Ensure();
        using var dir = new TestDirectory();
        byte[] archive = HostileArchives.Ok().Header("fifo", '6', 0).File("su", "#!su\n", mode: "0004755").End().ToArray();
        string target = dir.RestoreTarget("target");

        ContainerRestoreResult result = await ContainerRestore.RunAsync(new MemoryStream(archive), new ContainerRestoreOptions { IdMap = Map, TargetDirectory = target });

        Assert.Equal(["su"], result.Report.SetIdMembers);
        Assert.Equal("fifo 644 100000", Host.Run("stat", "--format=%F %a %u", Path.Combine(target, "fifo")).Trim());
        Assert.Equal("regular file 4755 100000", Host.Run("stat", "--format=%F %a %u", Path.Combine(target, "su")).Trim());
        // A host user cannot reach the setuid file (which would run as host uid 100000, the container's root): the
        // target's parent is root's alone.
        foreach (var (attempt, refusal) in new[] { (new[] { Path.Combine(target, "su") }, "failed to execute"), (new[] { "stat", Path.Combine(target, "su") }, "Permission denied") })
        {
            var (exitCode, _, stderr) = Host.TryRun("setpriv", ["--reuid", "65534", "--regid", "65534", "--clear-groups", "--", .. attempt]);
            Assert.NotEqual(0, exitCode);
            Assert.Contains(refusal, stderr, StringComparison.Ordinal);
        }
    }

    [Theory]
    [InlineData("gzip", ArchiveCompression.Gzip)]
    [InlineData("zstd", ArchiveCompression.Zstd)]
    [InlineData("xz", ArchiveCompression.Xz)]
    [InlineData("bzip2", ArchiveCompression.Bzip2)]
    public async Task Compression_is_told_by_magic_bytes_and_decompressed_before_tar_sees_it(string tool, ArchiveCompression expected)
    {
        RequiredTools.Ensure();
        using var dir = new TestDirectory();
        string plain = dir.Combine("archive.tar");
        File.WriteAllBytes(plain, HostileArchives.Ok().File("etc/hostname", "compressed\n").End().Zeros(8192).ToArray());
        Host.Run(tool, "-q", plain);
        File.Delete(plain); // zstd keeps its input
        string compressed = Directory.EnumerateFiles(dir.Path).Single();
        // The name says nothing: detection is by content only.
        File.Move(compressed, dir.Combine("archive.tar.lzo"));

        await using (FileStream stream = File.OpenRead(dir.Combine("archive.tar.lzo")))
        {
            TarValidationReport report = await TarArchiveValidator.ValidateAsync(stream);
            Assert.Equal(expected, report.Compression);
            Assert.Equal(3, report.MemberCount);
        }
        string target = dir.RestoreTarget("target");
        await using (FileStream stream = File.OpenRead(dir.Combine("archive.tar.lzo")))
        {
            await ContainerRestore.RunAsync(stream, new ContainerRestoreOptions { IdMap = Map, TargetDirectory = target });
        }
        Assert.Equal("compressed\n", File.ReadAllText(Path.Combine(target, "etc/hostname")));
    }

    [Fact]
    public async Task An_existing_target_or_a_privileged_map_is_refused_before_anything_is_written()
    {
        RequiredTools.Ensure();
        using var dir = new TestDirectory();
        string existing = dir.RestoreTarget("existing");
        Directory.CreateDirectory(existing);
        File.WriteAllText(Path.Combine(existing, "keep"), "keep\n");
        byte[] archive = HostileArchives.Ok().End().ToArray();

        ContainerRestoreException exists = await Assert.ThrowsAsync<ContainerRestoreException>(() =>
            ContainerRestore.RunAsync(new MemoryStream(archive), new ContainerRestoreOptions { IdMap = Map, TargetDirectory = existing }));
        Assert.Contains("already exists", exists.Message, StringComparison.Ordinal);
        Assert.Equal("keep\n", File.ReadAllText(Path.Combine(existing, "keep")));

        string target = dir.Combine("privileged");
        ContainerRestoreException privileged = await Assert.ThrowsAsync<ContainerRestoreException>(() =>
            ContainerRestore.RunAsync(new MemoryStream(archive), new ContainerRestoreOptions { IdMap = IdMap.Privileged, TargetDirectory = target }));
        Assert.Contains("refusing to restore a privileged container", privileged.Message, StringComparison.Ordinal);
        Assert.False(Directory.Exists(target));
    }
}
