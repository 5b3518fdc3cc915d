using System.Formats.Tar;

namespace Grpc.Backup.Containers.Tests;

/// <summary>
/// Whatever the container's files point at or have bound in, the stream holds only what the container's root can read:
/// a symlink to /etc/shadow stays a symlink, root-only host files are left out with a warning, never with content.
/// </summary>
public sealed class IsolationTests
{
    [Theory]
    [InlineData(ContainerBackupMode.Stop)]
    [InlineData(ContainerBackupMode.Suspend)]
    public async Task Host_root_files_never_reach_the_stream_and_the_backup_still_succeeds(ContainerBackupMode mode)
    {
        RequiredTools.Ensure();
        using var dir = new TestDirectory();
        string rootfs = dir.CreateDirectory("rootfs");
        string boundSecret = "bound-mount-point-secret-" + Guid.NewGuid();
        string hostMountSecret = "host-side-bind-secret-" + Guid.NewGuid();
        string rootOwnedSecret = "root-owned-file-secret-" + Guid.NewGuid();

        Directory.CreateDirectory(Path.Combine(rootfs, "etc"));
        Directory.CreateDirectory(Path.Combine(rootfs, "srv"));
        File.CreateSymbolicLink(Path.Combine(rootfs, "etc/leak"), "/etc/shadow");
        File.WriteAllText(Path.Combine(rootfs, "srv/secret"), "placeholder for the mount point\n");
        File.WriteAllText(Path.Combine(rootfs, "srv/bound"), "what the volume itself holds\n");
        Host.Run("chown", "-R", "-h", "100000:100000", rootfs);
        // A file of the volume that belongs to host root (a host mistake): container root cannot read it.
        File.WriteAllText(Path.Combine(rootfs, "srv/root-owned"), rootOwnedSecret);
        Host.Chmod(Path.Combine(rootfs, "srv/root-owned"), "0600");
        // A root-only host file configured as a backed-up bind mount point.
        string secretFile = dir.Combine("host-secret");
        File.WriteAllText(secretFile, boundSecret);
        Host.Chmod(secretFile, "0600");
        // A root-only host file bind-mounted over a file of the rootfs on the host, outside the container's config.
        string hostMounted = dir.Combine("host-mounted");
        File.WriteAllText(hostMounted, hostMountSecret);
        Host.Chmod(hostMounted, "0600");
        Host.Run("mount", "--bind", hostMounted, Path.Combine(rootfs, "srv/bound"));
        try
        {
            (byte[] stream, TarStreamBackupResult result) = await Backups.RunAsync(new ContainerBackupOptions
            {
                IdMap = IdMap.CreateDefault(),
                RootFileSystem = rootfs,
                Mode = mode,
                Freezer = new RecordingFreezer(),
                MountPoints = [new ContainerMountPoint("/srv/secret", secretFile)],
                TemporaryDirectory = dir.CreateDirectory("work"),
            });

            string shadow = File.ReadAllText("/etc/shadow");
            Assert.False(Backups.Contains(stream, shadow), "the stream holds /etc/shadow");
            Assert.False(Backups.Contains(stream, shadow.Split('\n')[0]), "the stream holds a line of /etc/shadow");
            Assert.False(Backups.Contains(stream, boundSecret), "the stream holds the bound root-only file");
            Assert.False(Backups.Contains(stream, hostMountSecret), "the stream holds the host's bind-mounted root-only file");
            Assert.False(Backups.Contains(stream, rootOwnedSecret), "the stream holds the host-root-owned file");

            Dictionary<string, TarEntry> members = Backups.Members(stream);
            Assert.Equal(TarEntryType.SymbolicLink, members["etc/leak"].EntryType);
            Assert.Equal("/etc/shadow", members["etc/leak"].LinkName);
            Assert.Contains(result.Warnings, w => w.Contains("srv/secret", StringComparison.Ordinal) && w.Contains("Permission denied", StringComparison.Ordinal));
            Assert.Contains(result.Warnings, w => w.Contains("srv/root-owned", StringComparison.Ordinal) && w.Contains("Permission denied", StringComparison.Ordinal));
            if (mode == ContainerBackupMode.Stop)
            {
                // The view binds the volume itself, not what the host mounted below it.
                Assert.True(Backups.Contains(stream, "what the volume itself holds"));
            }
        }
        finally
        {
            Host.Run("umount", Path.Combine(rootfs, "srv/bound"));
        }
    }
}
