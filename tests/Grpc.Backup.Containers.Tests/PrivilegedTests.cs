using System.Formats.Tar;

namespace Grpc.Backup.Containers.Tests;

public sealed class PrivilegedTests
{
    [Fact]
    public async Task A_privileged_container_is_backed_up_as_host_root_with_a_warning_and_its_restore_is_refused()
    {
        RequiredTools.Ensure();
        using var dir = new TestDirectory();
        string rootfs = dir.CreateDirectory("rootfs");
        Directory.CreateDirectory(Path.Combine(rootfs, "etc"));
        File.WriteAllText(Path.Combine(rootfs, "etc/hostname"), "privileged\n");
        File.WriteAllText(Path.Combine(rootfs, "etc/shadow"), "root:secret-of-the-container:1::::::\n");
        Host.Chmod(Path.Combine(rootfs, "etc/shadow"), "0600");
        Host.Chown(Path.Combine(rootfs, "etc/hostname"), 33, 33);
        string work = dir.CreateDirectory("work");

        (byte[] stream, TarStreamBackupResult result, int holder) = await Backups.RunWithHolderAsync(new ContainerBackupOptions
        {
            IdMap = IdMap.Parse("u 0 0 65536\ng 0 0 65536"),
            RootFileSystem = rootfs,
            TemporaryDirectory = work,
        });

        Assert.True(result.IsPrivileged);
        Assert.Contains("privileged", result.Warnings[0], StringComparison.Ordinal);
        Dictionary<string, TarEntry> members = Backups.Members(stream);
        // Host root reads the container's own root-only files; its ids are the host's.
        Assert.Equal("root:secret-of-the-container:1::::::\n", Backups.Text(members["etc/shadow"]));
        Assert.Equal(33, members["etc/hostname"].Uid);
        Backups.AssertCleanedUp(work, holder);

        string target = dir.RestoreTarget("target");
        ContainerRestoreException e = await Assert.ThrowsAsync<ContainerRestoreException>(() =>
            ContainerRestore.RunAsync(new MemoryStream(stream), new ContainerRestoreOptions { IdMap = IdMap.Privileged, TargetDirectory = target }));
        Assert.Contains("refusing to restore a privileged container", e.Message, StringComparison.Ordinal);
        Assert.False(Directory.Exists(target));

        // Restored as unprivileged instead, the same archive works: ids 0..65535 map to 100000 and up.
        await ContainerRestore.RunAsync(new MemoryStream(stream), new ContainerRestoreOptions { IdMap = IdMap.CreateDefault(), TargetDirectory = target });
        Assert.Equal("100033:100033", Host.Run("stat", "--format=%u:%g", Path.Combine(target, "etc/hostname")).Trim());
    }
}
