using System.Formats.Tar;

namespace Grpc.Backup.Containers.Tests;

/// <summary>
/// Single files from an untrusted archive (<see cref="ArchiveFiles"/>, <see cref="ContainerRestoreOptions.Paths"/>):
/// a selection reads no further than it needs, a member written through an earlier symlink is refused when selected alone,
/// setuid bits are cleared by default, and a hard link never points to a file the selection left out.
/// </summary>
public sealed class FileSelectionTests
{
    private static readonly IdMap Map = IdMap.CreateDefault();

    [Fact]
    public async Task A_member_written_through_an_earlier_symlink_is_refused_even_when_only_it_is_selected()
    {
        RequiredTools.Ensure();
        using var dir = new TestDirectory();
        string target = dir.RestoreTarget("target");
        byte[] archive = HostileArchives.Ok().Symlink("link", "/etc").File("link/" + HostileArchives.Marker, "x").End().ToArray();

        TarArchiveRejectedException e = await Assert.ThrowsAsync<TarArchiveRejectedException>(() => ContainerRestore.RunAsync(new MemoryStream(archive),
            new ContainerRestoreOptions { IdMap = Map, TargetDirectory = target, Paths = ["link/" + HostileArchives.Marker] }));

        Assert.Contains("symlink-then-write", e.Message, StringComparison.Ordinal);
        Assert.False(Directory.Exists(target));
        Assert.False(File.Exists("/etc/" + HostileArchives.Marker));
    }

    [Fact]
    public async Task A_selection_stops_reading_once_complete_so_a_broken_tail_is_never_read()
    {
        RequiredTools.Ensure();
        using var dir = new TestDirectory();
        // After etc/ comes a truncated member: a whole restore refuses the archive, a file restore of etc never reads it.
        byte[] archive = new RawTar().Directory("./").Directory("./etc/").File("./etc/hostname", "ct\n").File("./etc/passwd", "root:x:0:0::/:/bin/sh\n")
            .Directory("./var/").Header("./var/big", '0', 1 << 20).Data(new byte[4096]).ToArray();
        string target = dir.RestoreTarget("target");

        ContainerRestoreResult result = await ContainerRestore.RunAsync(new MemoryStream(archive),
            new ContainerRestoreOptions { IdMap = Map, TargetDirectory = target, Paths = ["/etc"] });

        Assert.False(result.Report.ReadToEnd);
        Assert.Equal(["etc", "etc/hostname", "etc/passwd"], TreeListing.OnHost(target).Keys.Order(StringComparer.Ordinal));
        Assert.Equal("ct\n", File.ReadAllText(Path.Combine(target, "etc/hostname")));
        IReadOnlyList<ArchiveEntry> listing = await ArchiveFiles.ListAsync(new MemoryStream(archive), "etc/");
        Assert.Equal(["etc/hostname", "etc/passwd"], listing.Select(e => e.Path));
        Assert.Equal([3L, 22L], listing.Select(e => e.Size));
        Assert.Equal("etc/hostname", Assert.Single(await ArchiveFiles.ListAsync(new MemoryStream(archive), "/etc/hostname")).Path);
        await Assert.ThrowsAsync<TarArchiveRejectedException>(() => ArchiveFiles.ListAsync(new MemoryStream(archive), "/"));
        await Assert.ThrowsAsync<ArgumentException>(() => ArchiveFiles.ListAsync(new MemoryStream(archive), "etc/../../x"));
    }

    [Fact]
    public async Task A_path_not_in_the_archive_fails_and_removes_the_target()
    {
        RequiredTools.Ensure();
        using var dir = new TestDirectory();
        string target = dir.RestoreTarget("target");
        byte[] archive = HostileArchives.Ok().File("etc/hostname", "ct\n").End().ToArray();

        ArchivePathNotFoundException e = await Assert.ThrowsAsync<ArchivePathNotFoundException>(() => ContainerRestore.RunAsync(new MemoryStream(archive),
            new ContainerRestoreOptions { IdMap = Map, TargetDirectory = target, Paths = ["etc/hostname", "etc/shadow"] }));

        Assert.Equal("etc/shadow", e.ArchivePath);
        Assert.False(Directory.Exists(target));
        await Assert.ThrowsAsync<ArchivePathNotFoundException>(() => ArchiveFiles.ListAsync(new MemoryStream(archive), "var"));
    }

    [Fact]
    public async Task Setuid_bits_are_cleared_in_the_header_tar_reads_and_a_link_to_a_left_out_file_is_left_out()
    {
        RequiredTools.Ensure();
        using var dir = new TestDirectory();
        byte[] archive = HostileArchives.Ok().File("other", "elsewhere\n").Directory("bin/").File("bin/su", "#!su\n", mode: "0004755")
            .File("bin/sg", "#!sg\n", mode: "0002755").HardLink("bin/other", "other").HardLink("bin/su2", "bin/su").End().ToArray();
        string target = dir.RestoreTarget("target");

        ContainerRestoreResult result = await ContainerRestore.RunAsync(new MemoryStream(archive), new ContainerRestoreOptions
        {
            IdMap = Map,
            TargetDirectory = target,
            Paths = ["bin"],
            Validation = new TarValidationOptions { SetIdBits = SetIdBitsPolicy.Strip },
        });

        Assert.Equal("regular file 755 100000", Host.Run("stat", "--format=%F %a %u", Path.Combine(target, "bin/su")).Trim());
        Assert.Equal("regular file 755 100000", Host.Run("stat", "--format=%F %a %u", Path.Combine(target, "bin/sg")).Trim());
        Assert.Equal("2", Host.Run("stat", "--format=%h", Path.Combine(target, "bin/su2")).Trim());
        Assert.False(File.Exists(Path.Combine(target, "bin/other")));
        Assert.False(File.Exists(Path.Combine(target, "other")));
        Assert.Contains(result.Warnings, w => w.Contains("left out hard link 'bin/other'", StringComparison.Ordinal));
        Assert.Contains(result.Warnings, w => w.Contains("cleared the setuid/setgid bits of 'bin/su'", StringComparison.Ordinal));

        // The same selection as a tar: GNU tar reads the rewritten headers (valid checksums) with the bits cleared.
        using var tar = new MemoryStream();
        await ArchiveFiles.WriteTarAsync(new MemoryStream(archive), ["/bin/"], tar, new TarValidationOptions { SetIdBits = SetIdBitsPolicy.Strip });
        File.WriteAllBytes(dir.Combine("selection.tar"), tar.ToArray());
        string listing = Host.Run("tar", "--list", "--verbose", "--numeric-owner", "--file", dir.Combine("selection.tar"));
        Assert.Contains("-rwxr-xr-x 0/0", listing, StringComparison.Ordinal);
        Assert.DoesNotContain("rws", listing, StringComparison.Ordinal);
        Assert.DoesNotContain("other", listing, StringComparison.Ordinal);
        var names = new List<string>();
        using (var reader = new TarReader(new MemoryStream(tar.ToArray())))
        {
            while (await reader.GetNextEntryAsync() is { } entry)
            {
                names.Add(entry.Name);
                Assert.Equal(0, (int)entry.Mode & 0b110_000_000_000);
            }
        }
        Assert.Equal(["bin/", "bin/su", "bin/sg", "bin/su2"], names);

        // Kept when asked for.
        using var kept = new MemoryStream();
        await ArchiveFiles.WriteTarAsync(new MemoryStream(archive), ["bin/su"], kept);
        File.WriteAllBytes(dir.Combine("kept.tar"), kept.ToArray());
        Assert.Contains("-rwsr-xr-x", Host.Run("tar", "--list", "--verbose", "--file", dir.Combine("kept.tar")), StringComparison.Ordinal);
    }
}
