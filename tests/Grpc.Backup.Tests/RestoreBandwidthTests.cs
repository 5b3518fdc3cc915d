using System.Diagnostics;
using System.Security.Cryptography;
using Grpc.Backup.Orchestrator.Internal;
using Grpc.Backup.Protocol;
using Grpc.Backup.Tests.Infrastructure;

namespace Grpc.Backup.Tests;

/// <summary>The restore bandwidth limit is the host's: its copier holds the rate, whatever the source could deliver.</summary>
public sealed class RestoreBandwidthTests
{
    [Fact]
    public async Task The_restore_copy_is_held_to_the_limit()
    {
        // Well below what this machine copies even while other suites run, so the limit, not the copy, sets the pace.
        const ulong limit = 4L << 20;
        const int size = 12 << 20;
        using var work = new TempDirectory();
        byte[] data = RandomNumberGenerator.GetBytes(size);
        await File.WriteAllBytesAsync(work.File("source.raw"), data);
        using var source = File.OpenHandle(work.File("source.raw"));
        using var target = File.OpenHandle(work.File("target.raw"), FileMode.CreateNew, FileAccess.ReadWrite);
        RandomAccess.SetLength(target, size);

        var clock = Stopwatch.StartNew();
        await BlockCopier.CopyAsync(new FileBlockSource(source), target, size, new BandwidthThrottle(limit), null, CancellationToken.None);
        double rate = size / clock.Elapsed.TotalSeconds;

        // Never above the limit. There is no lower bound: a starved CPU copies slower than any limit, and that is not
        // the limiter's fault.
        Assert.True(rate <= limit * 1.1, $"copied at {rate / (1 << 20):F2} MiB/s, above the limit of {limit >> 20} MiB/s");
        Assert.Equal(SHA256.HashData(data), SHA256.HashData(await File.ReadAllBytesAsync(work.File("target.raw"))));
    }
}
