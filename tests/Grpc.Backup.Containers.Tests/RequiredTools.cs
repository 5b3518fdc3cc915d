namespace Grpc.Backup.Containers.Tests;

/// <summary>
/// Installs the Debian packages the suite drives, once, when one of their programs is missing (a fresh CI machine):
/// GNU tar, util-linux (unshare, nsenter, setpriv), rsync, btrfs-progs, zstd, xz-utils, bzip2.
/// </summary>
internal static class RequiredTools
{
    private static readonly (string Program, string Package)[] Tools =
    [
        ("tar", "tar"), ("unshare", "util-linux"), ("nsenter", "util-linux"), ("setpriv", "util-linux"), ("rsync", "rsync"),
        ("btrfs", "btrfs-progs"), ("mkfs.btrfs", "btrfs-progs"), ("zstd", "zstd"), ("xz", "xz-utils"), ("bzip2", "bzip2"),
    ];

    private static readonly Lazy<bool> Installed = new(Install);

    public static void Ensure() => Assert.True(Installed.Value);

    private static bool Install()
    {
        string[] missing = Tools.Where(t => !OnPath(t.Program)).Select(t => t.Package).Distinct().ToArray();
        if (missing.Length == 0)
        {
            return true;
        }
        Environment.SetEnvironmentVariable("DEBIAN_FRONTEND", "noninteractive");
        Host.Run("apt-get", "update", "-qq");
        Host.Run("apt-get", ["install", "-y", "-qq", "--no-install-recommends", .. missing]);
        return true;
    }

    private static bool OnPath(string program) =>
        (Environment.GetEnvironmentVariable("PATH") ?? "/usr/sbin:/usr/bin:/sbin:/bin").Split(':')
            .Append("/usr/sbin").Append("/sbin")
            .Any(directory => File.Exists(Path.Combine(directory, program)));
}
