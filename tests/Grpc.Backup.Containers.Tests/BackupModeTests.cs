using System.Formats.Tar;

namespace Grpc.Backup.Containers.Tests;

[Collection(HostMountsCollection.Name)]
public sealed class BackupModeTests
{
    private static readonly IdMap Map = IdMap.CreateDefault();

    [Fact]
    public async Task Suspend_mode_copies_again_while_frozen_and_leaves_nothing_behind()
    {
        RequiredTools.Ensure();
        using var dir = new TestDirectory();
        string rootfs = dir.CreateDirectory("rootfs");
        Directory.CreateDirectory(Path.Combine(rootfs, "etc"));
        Directory.CreateDirectory(Path.Combine(rootfs, "mnt/data"));
        Directory.CreateDirectory(Path.Combine(rootfs, "mnt/skip"));
        File.WriteAllText(Path.Combine(rootfs, "etc/hostname"), "ct100\n");
        File.WriteAllText(Path.Combine(rootfs, "gone.txt"), "deleted before the freeze\n");
        Host.Run("chown", "-R", "100000:100000", rootfs);
        string data = dir.CreateDirectory("data");
        File.WriteAllText(Path.Combine(data, "volume-file"), "on a mount point\n");
        Host.Run("chown", "-R", "100033:100033", data);
        string skipped = dir.CreateDirectory("skipped");
        File.WriteAllText(Path.Combine(skipped, "not-backed-up"), "left out\n");
        // The container writes until it is frozen: what happens right before the freeze must be in the backup, what
        // happens after the thaw must not.
        var freezer = new RecordingFreezer(
            onFreeze: () =>
            {
                File.WriteAllText(Path.Combine(rootfs, "late.txt"), "written just before the freeze\n");
                File.Delete(Path.Combine(rootfs, "gone.txt"));
            },
            onThaw: () => File.WriteAllText(Path.Combine(rootfs, "after-thaw.txt"), "too late\n"));
        string work = dir.CreateDirectory("work");

        (byte[] stream, TarStreamBackupResult result, int holder) = await Backups.RunWithHolderAsync(new ContainerBackupOptions
        {
            IdMap = Map,
            RootFileSystem = rootfs,
            Mode = ContainerBackupMode.Suspend,
            Freezer = freezer,
            MountPoints = [new ContainerMountPoint("/mnt/data", data), new ContainerMountPoint("/mnt/skip", skipped, Backup: false)],
            TemporaryDirectory = work,
        });

        Assert.Empty(result.Warnings);
        Assert.Equal(["freeze", "thaw"], freezer.Calls);
        Dictionary<string, TarEntry> members = Backups.Members(stream);
        Assert.Equal("written just before the freeze\n", Backups.Text(members["late.txt"]));
        Assert.DoesNotContain("gone.txt", members.Keys);
        Assert.DoesNotContain("after-thaw.txt", members.Keys);
        Assert.Equal(33, members["mnt/data/volume-file"].Uid);
        Assert.Contains("mnt/skip", members.Keys);
        Assert.DoesNotContain(members.Keys, k => k.StartsWith("mnt/skip/", StringComparison.Ordinal));
        Assert.Equal(0, members["etc/hostname"].Uid);
        Backups.AssertCleanedUp(work, holder);
    }

    [Fact]
    public async Task Snapshot_mode_archives_btrfs_snapshots_taken_while_frozen_and_deletes_them()
    {
        RequiredTools.Ensure();
        using var dir = new TestDirectory();
        using var btrfs = new LoopBtrfs(dir);
        string rootfs = btrfs.CreateSubvolume("ct100");
        Directory.CreateDirectory(Path.Combine(rootfs, "etc"));
        Directory.CreateDirectory(Path.Combine(rootfs, "mnt/data"));
        File.WriteAllText(Path.Combine(rootfs, "etc/hostname"), "ct100\n");
        Host.Run("chown", "-R", "100000:100000", rootfs);
        string data = btrfs.CreateSubvolume("ct100-data");
        File.WriteAllText(Path.Combine(data, "volume-file"), "on a mount point\n");
        Host.Run("chown", "-R", "101000:101000", data);
        var freezer = new RecordingFreezer(onThaw: () =>
        {
            // After the thaw the container changes its files; the snapshot must not see it.
            File.WriteAllText(Path.Combine(rootfs, "etc/hostname"), "changed after the snapshot\n");
            File.WriteAllText(Path.Combine(rootfs, "after.txt"), "too late\n");
            File.WriteAllText(Path.Combine(data, "volume-file"), "changed after the snapshot\n");
        });
        string work = dir.CreateDirectory("work");

        (byte[] stream, TarStreamBackupResult result, int holder) = await Backups.RunWithHolderAsync(new ContainerBackupOptions
        {
            IdMap = Map,
            RootFileSystem = rootfs,
            Mode = ContainerBackupMode.Snapshot,
            Freezer = freezer,
            MountPoints = [new ContainerMountPoint("/mnt/data", data)],
            TemporaryDirectory = work,
        });

        Assert.Empty(result.Warnings);
        Assert.Equal(["freeze", "thaw"], freezer.Calls);
        Dictionary<string, TarEntry> members = Backups.Members(stream);
        Assert.Equal("ct100\n", Backups.Text(members["etc/hostname"]));
        Assert.Equal("on a mount point\n", Backups.Text(members["mnt/data/volume-file"]));
        Assert.Equal(1000, members["mnt/data/volume-file"].Uid);
        Assert.DoesNotContain("after.txt", members.Keys);
        Assert.Equal(["ct100", "ct100-data"], btrfs.Subvolumes());
        Backups.AssertCleanedUp(work, holder);
    }

    [Fact]
    public async Task Snapshot_mode_on_ext4_tmpfs_or_a_plain_btrfs_directory_fails_clearly_and_cleans_up()
    {
        RequiredTools.Ensure();
        using var dir = new TestDirectory();
        string work = dir.CreateDirectory("work");
        string onExt4 = dir.CreateDirectory("rootfs");
        Assert.Equal("ext2/ext3", Host.Run("stat", "--file-system", "--format=%T", onExt4).Trim());

        ContainerBackupException ext4 = await Assert.ThrowsAsync<ContainerBackupException>(() => TarStreamBackup.StartAsync(Options(onExt4, work)));
        Assert.Contains("needs the root file system", ext4.Message, StringComparison.Ordinal);
        Assert.Contains("on ext2/ext3", ext4.Message, StringComparison.Ordinal);

        string tmpfs = dir.CreateDirectory("tmpfs");
        Host.Run("mount", "-t", "tmpfs", "-o", "size=10m", "tmpfs", tmpfs);
        try
        {
            ContainerBackupException onTmpfs = await Assert.ThrowsAsync<ContainerBackupException>(() => TarStreamBackup.StartAsync(Options(tmpfs, work)));
            Assert.Contains("on tmpfs", onTmpfs.Message, StringComparison.Ordinal);
        }
        finally
        {
            Host.Run("umount", tmpfs);
        }

        using (var btrfs = new LoopBtrfs(dir))
        {
            string plain = Path.Combine(btrfs.MountPoint, "plain");
            Directory.CreateDirectory(plain);
            ContainerBackupException notSubvolume = await Assert.ThrowsAsync<ContainerBackupException>(() => TarStreamBackup.StartAsync(Options(plain, work)));
            Assert.Contains("plain directory on btrfs", notSubvolume.Message, StringComparison.Ordinal);
            Assert.Empty(btrfs.Subvolumes());
        }
        Assert.Empty(Directory.EnumerateFileSystemEntries(work));
        Assert.Empty(Host.MountsUnder(work));

        static ContainerBackupOptions Options(string rootfs, string work) => new()
        {
            IdMap = Map,
            RootFileSystem = rootfs,
            Mode = ContainerBackupMode.Snapshot,
            TemporaryDirectory = work,
        };
    }

    [Fact]
    public async Task A_mount_point_that_is_a_symlink_in_the_container_is_not_mounted_through()
    {
        RequiredTools.Ensure();
        using var dir = new TestDirectory();
        string rootfs = dir.CreateDirectory("rootfs");
        Directory.CreateDirectory(Path.Combine(rootfs, "mnt"));
        File.CreateSymbolicLink(Path.Combine(rootfs, "mnt/data"), "/etc");
        string data = dir.CreateDirectory("data");
        string work = dir.CreateDirectory("work");

        ContainerBackupException e = await Assert.ThrowsAsync<ContainerBackupException>(() => TarStreamBackup.StartAsync(new ContainerBackupOptions
        {
            IdMap = Map,
            RootFileSystem = rootfs,
            MountPoints = [new ContainerMountPoint("/mnt/data", data)],
            TemporaryDirectory = work,
        }));

        Assert.Contains("is a symlink; refusing to mount through it", e.Message, StringComparison.Ordinal);
        Assert.Empty(Directory.EnumerateFileSystemEntries(work));
    }

    [Fact]
    public async Task A_reader_that_goes_away_fails_the_backup_and_everything_is_cleaned_up()
    {
        RequiredTools.Ensure();
        using var dir = new TestDirectory();
        string rootfs = BigRootfs(dir);
        string work = dir.CreateDirectory("work");

        await using TarStreamBackup backup = await TarStreamBackup.StartAsync(new ContainerBackupOptions { IdMap = Map, RootFileSystem = rootfs, TemporaryDirectory = work });
        int holder = backup.HolderProcessId;
        Assert.Single(Directory.EnumerateFileSystemEntries(work));
        await using (var pipe = new FileStream(backup.ReadHandle, FileAccess.Read, bufferSize: 0))
        {
            await pipe.ReadExactlyAsync(new byte[4096]);
        }

        ContainerBackupException e = await Assert.ThrowsAsync<ContainerBackupException>(() => backup.Completion);
        Assert.Contains("the reader closed the pipe", e.Message, StringComparison.Ordinal);
        Backups.AssertCleanedUp(work, holder);
    }

    [Fact]
    public async Task Disposing_a_backup_whose_reader_stalled_cancels_it_and_cleans_up()
    {
        RequiredTools.Ensure();
        using var dir = new TestDirectory();
        string rootfs = BigRootfs(dir);
        string work = dir.CreateDirectory("work");

        TarStreamBackup backup = await TarStreamBackup.StartAsync(new ContainerBackupOptions { IdMap = Map, RootFileSystem = rootfs, TemporaryDirectory = work });
        int holder = backup.HolderProcessId;
        using var pipe = new FileStream(backup.ReadHandle, FileAccess.Read, bufferSize: 0);
        await pipe.ReadExactlyAsync(new byte[4096]);
        // The reader keeps the pipe open but reads no more: the writer is stuck on a full pipe until disposal.
        await Task.Delay(300);
        Assert.False(backup.Completion.IsCompleted);
        // Meanwhile the read-only view is mounted in the holder's private mount namespace only, not on the host.
        Assert.Contains(File.ReadAllLines($"/proc/{holder}/mountinfo"), l => l.Contains(work, StringComparison.Ordinal) && l.Contains(" ro,", StringComparison.Ordinal));
        Assert.Empty(Host.MountsUnder(work));
        await backup.DisposeAsync();

        ContainerBackupException e = await Assert.ThrowsAsync<ContainerBackupException>(() => backup.Completion);
        Assert.Contains("cancelled", e.Message, StringComparison.Ordinal);
        Backups.AssertCleanedUp(work, holder);
    }

    private static string BigRootfs(TestDirectory dir)
    {
        string rootfs = dir.CreateDirectory("rootfs");
        File.WriteAllBytes(Path.Combine(rootfs, "big"), new byte[8 << 20]);
        Host.Run("chown", "-R", "100000:100000", rootfs);
        return rootfs;
    }
}
