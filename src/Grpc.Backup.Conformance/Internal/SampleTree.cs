using System.Globalization;
using System.Security.Cryptography;

namespace Grpc.Backup.Conformance.Internal;

/// <summary>
/// A small container root file system with owners, modes, a symlink, a hard-to-miss private file and random content,
/// owned on the host as the default id map places them (container uid 0 = host 100000); and its listing, the
/// comparison a restore must pass.
/// </summary>
internal static class SampleTree
{
    public const uint HostBase = 100000;

    public static async Task BuildAsync(string root, CancellationToken cancellationToken)
    {
        Directory.CreateDirectory(root);
        Directory.CreateDirectory(Path.Combine(root, "etc"));
        Directory.CreateDirectory(Path.Combine(root, "home/user"));
        Directory.CreateDirectory(Path.Combine(root, "usr/bin"));
        Directory.CreateDirectory(Path.Combine(root, "var/lib/empty"));
        await File.WriteAllTextAsync(Path.Combine(root, "etc/hostname"), "conformance\n", cancellationToken);
        await File.WriteAllTextAsync(Path.Combine(root, "usr/bin/tool"), "#!/bin/sh\necho tool\n", cancellationToken);
        await File.WriteAllBytesAsync(Path.Combine(root, "home/user/data.bin"), RandomNumberGenerator.GetBytes(300 * 1024), cancellationToken);
        await File.WriteAllTextAsync(Path.Combine(root, "home/user/private"), "only for uid 1000\n", cancellationToken);
        await File.WriteAllBytesAsync(Path.Combine(root, "var/lib/zero-length"), [], cancellationToken);
        File.CreateSymbolicLink(Path.Combine(root, "etc/link"), "hostname");
        await Tool.RunAsync("chown", ["-hR", $"{HostBase}:{HostBase}", root], cancellationToken);
        await Tool.RunAsync("chown", ["-hR", $"{HostBase + 1000}:{HostBase + 1000}", Path.Combine(root, "home/user")], cancellationToken);
        await Tool.RunAsync("chmod", ["0755", root, Path.Combine(root, "usr/bin/tool")], cancellationToken);
        await Tool.RunAsync("chmod", ["0700", Path.Combine(root, "home/user")], cancellationToken);
        await Tool.RunAsync("chmod", ["0600", Path.Combine(root, "home/user/private")], cancellationToken);
        await Tool.RunAsync("chmod", ["1777", Path.Combine(root, "var/lib/empty")], cancellationToken);
    }

    /// <summary>Path to "type mode uid:gid content" (sha256 for files, target for links), in the host's view.</summary>
    public static async Task<SortedDictionary<string, string>> ListAsync(string root, CancellationToken cancellationToken)
    {
        string listing = await Tool.RunAsync("find", [root, "-mindepth", "1", "-printf", "%P\\0%y\\0%m\\0%U:%G\\0%l\\0"], cancellationToken);
        string[] fields = listing.Split('\0');
        var entries = new SortedDictionary<string, string>(StringComparer.Ordinal);
        for (int i = 0; i + 4 < fields.Length; i += 5)
        {
            string content = fields[i + 1] == "f"
                ? Convert.ToHexStringLower(SHA256.HashData(await File.ReadAllBytesAsync(Path.Combine(root, fields[i]), cancellationToken)))
                : fields[i + 4];
            entries[fields[i]] = string.Create(CultureInfo.InvariantCulture, $"{fields[i + 1]} {fields[i + 2]} {fields[i + 3]} {content}");
        }
        return entries;
    }
}
