namespace Grpc.Backup.Tests.Infrastructure;

/// <summary>
/// A restored ext4 disk image checked from the host without mounting it: <c>e2fsck -fn</c> must find nothing, and
/// every file, read out with <c>debugfs rdump</c>, must equal the guest's manifest, no file missing and none extra.
/// </summary>
internal static class Ext4Image
{
    /// <summary>Asserts that <paramref name="image"/> (raw) is clean and holds exactly the manifest's files under <paramref name="label"/>.</summary>
    public static async Task AssertMatchesAsync(string image, string label, IReadOnlyDictionary<string, string> manifest, string scratch)
    {
        var (fsck, fsckOut, fsckErr) = await ChildProcess.RunAsync("e2fsck", ["-fn", image], timeout: TimeSpan.FromMinutes(3));
        Assert.True(fsck == 0, $"e2fsck -fn {label} exited {fsck}:\n{fsckOut}{fsckErr}");

        Directory.CreateDirectory(scratch);
        var (dump, _, dumpErr) = await ChildProcess.RunAsync("debugfs", ["-R", $"rdump / {scratch}", image], timeout: TimeSpan.FromMinutes(3));
        Assert.True(dump == 0, $"debugfs rdump {label}: {dumpErr}");

        var found = Directory.EnumerateFiles(scratch, "*", SearchOption.AllDirectories)
            .ToDictionary(f => label + "/" + Path.GetRelativePath(scratch, f), Checksums.Sha256File, StringComparer.Ordinal);
        var expected = manifest.Where(e => e.Key.StartsWith(label + "/", StringComparison.Ordinal)).ToDictionary(StringComparer.Ordinal);
        Assert.True(expected.Count > 0, $"the manifest lists no file of {label}");
        string[] missing = [.. expected.Keys.Except(found.Keys).Order(StringComparer.Ordinal)];
        string[] extra = [.. found.Keys.Except(expected.Keys).Order(StringComparer.Ordinal)];
        string[] differing = [.. expected.Where(e => found.TryGetValue(e.Key, out string? hash) && hash != e.Value).Select(e => e.Key).Order(StringComparer.Ordinal)];
        Assert.True(missing.Length == 0 && extra.Length == 0 && differing.Length == 0,
            $"{label}: missing [{string.Join(' ', missing)}], extra [{string.Join(' ', extra)}], differing [{string.Join(' ', differing)}] of {expected.Count} files");
    }
}
