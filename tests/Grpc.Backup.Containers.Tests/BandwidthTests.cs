using System.Diagnostics;

namespace Grpc.Backup.Containers.Tests;

public sealed class BandwidthTests
{
    [Fact]
    public async Task The_host_paces_the_stream_and_the_restore_to_the_limit()
    {
        RequiredTools.Ensure();
        using var dir = new TestDirectory();
        string rootfs = dir.CreateDirectory("rootfs");
        byte[] content = new byte[3 << 19];
        Random.Shared.NextBytes(content);
        File.WriteAllBytes(Path.Combine(rootfs, "random"), content);
        Host.Run("chown", "-R", "100000:100000", rootfs);
        const ulong Limit = 512 * 1024;

        var clock = Stopwatch.StartNew();
        (byte[] stream, _) = await Backups.RunAsync(new ContainerBackupOptions
        {
            IdMap = IdMap.CreateDefault(),
            RootFileSystem = rootfs,
            BytesPerSecond = Limit,
            TemporaryDirectory = dir.CreateDirectory("work"),
        });
        TimeSpan backup = clock.Elapsed;

        // 1.5 MiB at 512 KiB/s takes about 3 s; the bucket allows only a tenth of a second of burst.
        double expected = (double)stream.Length / Limit;
        Assert.True(backup.TotalSeconds > expected - 0.3, $"{stream.Length} bytes took {backup.TotalSeconds:F2} s at {Limit} B/s");

        string target = dir.RestoreTarget("target");
        clock.Restart();
        await ContainerRestore.RunAsync(new MemoryStream(stream), new ContainerRestoreOptions
        {
            IdMap = IdMap.CreateDefault(),
            TargetDirectory = target,
            BytesPerSecond = 2 * Limit,
        });
        Assert.True(clock.Elapsed.TotalSeconds > (expected / 2) - 0.3, $"restore took {clock.Elapsed.TotalSeconds:F2} s at {2 * Limit} B/s");
        Assert.Equal(content, File.ReadAllBytes(Path.Combine(target, "random")));
    }
}
