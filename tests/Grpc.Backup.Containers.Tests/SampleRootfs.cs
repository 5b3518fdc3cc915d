namespace Grpc.Backup.Containers.Tests;

/// <summary>
/// A container root file system as an unprivileged container (map u/g 0 100000 65536) has it on the host: owners
/// 100000 (root), 100033 (www-data), 101000 (a user); symlinks (one pointing at the host's /etc/shadow), hard links,
/// a sparse file, user xattrs, a fifo, a setuid file, a 200-level deep tree, and files the exclusions drop.
/// </summary>
internal static class SampleRootfs
{
    public const int HostBase = 100000;
    public const int DeepLevels = 200;
    public const long SparseSize = 64L << 20;

    public static readonly string[] Excludes = ["/tmp/?*", "*.log", "/var/cache/**"];

    /// <summary>Paths (relative) that <see cref="Excludes"/> must drop.</summary>
    public static readonly string[] ExcludedPaths = ["tmp/junk", "var/log/app.log", "var/cache/apt", "var/cache/apt/pkgcache.bin"];

    public static string DeepPath => string.Join('/', Enumerable.Repeat("d", DeepLevels).Prepend("deep"));

    public static void Build(string root)
    {
        foreach (string directory in (string[])["etc", "usr/bin", "usr/lib", "var/www", "var/log", "var/lib", "var/cache/apt", "home/user", "tmp", "run", "mnt/data", "mnt/skip", DeepPath])
        {
            Directory.CreateDirectory(Path.Combine(root, directory));
        }
        Write(root, "etc/hostname", "ct100\n");
        Write(root, "etc/passwd", "root:x:0:0:root:/root:/bin/sh\nwww-data:x:33:33::/var/www:/usr/sbin/nologin\nuser:x:1000:1000::/home/user:/bin/sh\n");
        Write(root, "usr/bin/busybox", "#!busybox\n" + new string('b', 5000));
        Write(root, "usr/bin/su", "#!su\n");
        Write(root, "usr/lib/libc.so", "lib\n");
        Write(root, "var/www/index.html", "<h1>hello</h1>\n");
        Write(root, "home/user/.profile", "export PS1=ct\n");
        Write(root, "home/user/a", "hard linked content\n");
        Host.Run("ln", Path.Combine(root, "home/user/a"), Path.Combine(root, "home/user/b"));
        Write(root, Path.Combine(DeepPath, "bottom"), "the bottom of a deep tree\n");
        Write(root, "tmp/junk", "excluded\n");
        Write(root, "var/log/app.log", "excluded\n");
        Write(root, "var/cache/apt/pkgcache.bin", "excluded\n");
        File.CreateSymbolicLink(Path.Combine(root, "usr/bin/sh"), "busybox");
        File.CreateSymbolicLink(Path.Combine(root, "lib"), "usr/lib");
        File.CreateSymbolicLink(Path.Combine(root, "etc/leak"), "/etc/shadow");
        Host.Run("mkfifo", Path.Combine(root, "run/initctl"));
        using (var sparse = new FileStream(Path.Combine(root, "var/lib/sparse.img"), FileMode.CreateNew))
        {
            sparse.SetLength(SparseSize);
            sparse.Write("head"u8);
            sparse.Position = SparseSize / 2;
            sparse.Write("middle"u8);
        }

        // Owners as the host sees an unprivileged container's files; then modes (chown clears setuid bits).
        Host.Run("chown", "-R", "-h", $"{HostBase}:{HostBase}", root);
        Host.Run("chown", "-R", "-h", $"{HostBase + 33}:{HostBase + 33}", Path.Combine(root, "var/www"));
        Host.Run("chown", "-R", "-h", $"{HostBase + 1000}:{HostBase + 1000}", Path.Combine(root, "home/user"));
        Host.Chmod(root, "0755");
        Host.Chmod(Path.Combine(root, "tmp"), "1777");
        Host.Chmod(Path.Combine(root, "home/user"), "0700");
        Host.Chmod(Path.Combine(root, "home/user/.profile"), "0600");
        Host.Chmod(Path.Combine(root, "var/www/index.html"), "0640");
        Host.Chmod(Path.Combine(root, "usr/bin/busybox"), "0755");
        Host.Chmod(Path.Combine(root, "usr/bin/su"), "4755");
        Xattr.Set(Path.Combine(root, "etc/hostname"), "user.comment", "set by the test");
        Xattr.Set(Path.Combine(root, "var/www"), "user.dir", "a directory attribute");
    }

    private static void Write(string root, string relative, string content) => File.WriteAllText(Path.Combine(root, relative), content);
}
