using System.Formats.Tar;

namespace Grpc.Backup.Containers.Tests;

public sealed class RoundTripTests
{
    private static readonly IdMap Map = IdMap.CreateDefault();

    [Fact]
    public async Task A_tar_stream_backup_restores_into_an_identical_tree()
    {
        RequiredTools.Ensure();
        using var dir = new TestDirectory();
        string rootfs = dir.CreateDirectory("rootfs");
        SampleRootfs.Build(rootfs);
        string data = dir.CreateDirectory("data");
        File.WriteAllText(Path.Combine(data, "volume-file"), "on a mount point\n");
        Host.Chown(data, SampleRootfs.HostBase, SampleRootfs.HostBase);
        Host.Chown(Path.Combine(data, "volume-file"), SampleRootfs.HostBase + 1000, SampleRootfs.HostBase + 1000);
        string skipped = dir.CreateDirectory("skipped");
        File.WriteAllText(Path.Combine(skipped, "not-backed-up"), "left out\n");

        (byte[] stream, TarStreamBackupResult result) = await Backups.RunAsync(new ContainerBackupOptions
        {
            IdMap = Map,
            RootFileSystem = rootfs,
            MountPoints = [new ContainerMountPoint("/mnt/data", data), new ContainerMountPoint("/mnt/skip", skipped, Backup: false)],
            ExcludePatterns = SampleRootfs.Excludes,
            TemporaryDirectory = dir.CreateDirectory("work"),
        });
        Assert.Empty(result.Warnings);
        Assert.False(result.IsPrivileged);
        Assert.Equal(stream.Length, result.BytesWritten);

        string target = dir.RestoreTarget("restored");
        ContainerRestoreResult restore = await ContainerRestore.RunAsync(new MemoryStream(stream), new ContainerRestoreOptions { IdMap = Map, TargetDirectory = target });
        Assert.Empty(restore.Warnings);
        Assert.Contains("./usr/bin/su", restore.Report.SetIdMembers);

        // The host's view: everything but the exclusions is equal, owners included (100000, 100033, 101000).
        Dictionary<string, string> expected = TreeListing.OnHost(rootfs);
        foreach (string excluded in SampleRootfs.ExcludedPaths)
        {
            Assert.True(expected.Remove(excluded), excluded);
        }
        expected["mnt/data/volume-file"] = TreeListing.OnHost(data)["volume-file"];
        Dictionary<string, string> actual = TreeListing.OnHost(target);
        Assert.Equal(expected.OrderBy(p => p.Key), actual.OrderBy(p => p.Key));
        Assert.Equal("100033:100033", TreeListing.Owner(actual, "var/www/index.html"));
        Assert.Equal("101000:101000", TreeListing.Owner(actual, "home/user/.profile"));
        Assert.Equal("directory 755 100000 100000", Host.Run("stat", "--format=%F %a %u %g", target).Trim());
        Assert.False(Directory.Exists(Path.Combine(target, "tmp/junk")));
        Assert.Empty(Directory.EnumerateFileSystemEntries(Path.Combine(target, "mnt/skip")));

        // The container's view of the restored tree: its own ids.
        await using (UserNamespace ns = await UserNamespace.CreateAsync(Map))
        {
            Dictionary<string, string> inside = await TreeListing.InNamespaceAsync(ns, await ns.BindOverParentAsync(target), target);
            Assert.Equal("0:0", TreeListing.Owner(inside, "etc/hostname"));
            Assert.Equal("33:33", TreeListing.Owner(inside, "var/www/index.html"));
            Assert.Equal("1000:1000", TreeListing.Owner(inside, "home/user/.profile"));
            Assert.Equal("1000:1000", TreeListing.Owner(inside, "mnt/data/volume-file"));
        }

        // Structure the listing does not show: hard links share an inode, xattrs, sparseness, the fifo, the deep file.
        Assert.Equal(Host.Run("stat", "--format=%i", Path.Combine(target, "home/user/a")), Host.Run("stat", "--format=%i", Path.Combine(target, "home/user/b")));
        Assert.Equal("set by the test", Xattr.Get(Path.Combine(target, "etc/hostname"), "user.comment"));
        Assert.Equal("a directory attribute", Xattr.Get(Path.Combine(target, "var/www"), "user.dir"));
        long allocated = long.Parse(Host.Run("stat", "--format=%b", Path.Combine(target, "var/lib/sparse.img")).Trim(), System.Globalization.CultureInfo.InvariantCulture) * 512;
        Assert.True(allocated < 1 << 20, $"the sparse file takes {allocated} bytes on disk");
        Assert.Equal("fifo", Host.Run("stat", "--format=%F", Path.Combine(target, "run/initctl")).Trim());
        Assert.Equal("/etc/shadow", new FileInfo(Path.Combine(target, "etc/leak")).LinkTarget);
        Assert.Equal("the bottom of a deep tree\n", File.ReadAllText(Path.Combine(target, SampleRootfs.DeepPath, "bottom")));
    }

    [Fact]
    public async Task The_archive_holds_container_view_owners_and_stays_out_of_excluded_paths()
    {
        RequiredTools.Ensure();
        using var dir = new TestDirectory();
        string rootfs = dir.CreateDirectory("rootfs");
        SampleRootfs.Build(rootfs);

        (byte[] stream, _) = await Backups.RunAsync(new ContainerBackupOptions
        {
            IdMap = Map,
            RootFileSystem = rootfs,
            ExcludePatterns = SampleRootfs.Excludes,
            TemporaryDirectory = dir.CreateDirectory("work"),
        });

        Dictionary<string, TarEntry> members = Backups.Members(stream);
        Assert.All(members.Values, m => Assert.True(m.Uid < 65536 && m.Gid < 65536, $"{m.Name} is owned by {m.Uid}:{m.Gid}"));
        Assert.Equal(0, members[""].Uid);
        Assert.Equal(0, members["etc/hostname"].Uid);
        Assert.Equal(33, members["var/www/index.html"].Uid);
        Assert.Equal(33, members["var/www/index.html"].Gid);
        Assert.Equal(1000, members["home/user/.profile"].Uid);
        Assert.All(members.Values, m => Assert.Equal(TarEntryFormat.Pax, m.Format));
        Assert.Equal(TarEntryType.SymbolicLink, members["etc/leak"].EntryType);
        Assert.Equal(TarEntryType.HardLink, members.Single(m => m.Key is "home/user/a" or "home/user/b" && m.Value.EntryType == TarEntryType.HardLink).Value.EntryType);
        Assert.Equal(TarEntryType.Fifo, members["run/initctl"].EntryType);
        Assert.Contains("tmp", members.Keys);
        Assert.Contains("var/cache", members.Keys);
        Assert.DoesNotContain(members.Keys, k => SampleRootfs.ExcludedPaths.Contains(k));
    }
}
