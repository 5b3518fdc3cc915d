using System.Net.Sockets;
using System.Text.Json.Nodes;

namespace Grpc.Backup.Qemu.Tests.SnapshotAccess;

/// <summary>Checks shared by the snapshot-access tests.</summary>
internal static class SnapshotAssert
{
    /// <summary>
    /// Nothing of a backup is left: only the original nodes and the guest exports, no fleecing file, no
    /// background bitmap, no NBD server (it was started by snapshot access), and the guest still works.
    /// </summary>
    /// <param name="probeGuestWrites">
    /// Also write through the guest's path; off where the test still checks bitmaps, which the probe dirties.
    /// </param>
    public static async Task LeftNothingAsync(StorageDaemonVm vm, bool probeGuestWrites = true)
    {
        Assert.Equal(StorageDaemonVm.OriginalNodes.Order(StringComparer.Ordinal), await vm.NodeNamesAsync());
        JsonArray exports = await vm.QueryAsync("query-block-exports");
        Assert.Equal(["guest0", "guest1"], exports.Select(e => (string)e!["id"]!).Order(StringComparer.Ordinal));
        Assert.Empty(Directory.EnumerateFileSystemEntries(vm.FleecingDirectory));
        for (int disk = 0; disk < StorageDaemonVm.DiskCount; disk++)
        {
            Assert.DoesNotContain((await vm.BitmapsAsync(disk)).Keys, name => name.EndsWith("-bg", StringComparison.Ordinal));
        }

        var stop = await Assert.ThrowsAsync<QmpCommandException>(() => vm.Qmp.ExecuteAsync("nbd-server-stop"));
        Assert.Contains("not running", stop.Description, StringComparison.Ordinal);
        Assert.False(File.Exists(vm.SnapshotSocket));
        await AssertCannotConnectAsync(vm.SnapshotSocket);

        // The guest keeps running on its disks.
        for (int disk = 0; disk < StorageDaemonVm.DiskCount; disk++)
        {
            if (probeGuestWrites)
            {
                await vm.GuestWriteAsync(disk, 4096, 4096, 0x5a);
            }

            await using FileStream guest = vm.OpenGuest(disk);
            guest.Position = 4096;
            byte[] back = new byte[4096];
            await guest.ReadExactlyAsync(back);
            if (probeGuestWrites)
            {
                Assert.All(back, b => Assert.Equal(0x5a, b));
            }
        }
    }

    /// <summary>
    /// The dirty extents expected after writing <paramref name="writes"/>: each widened to the bitmap's
    /// granularity, then merged.
    /// </summary>
    public static List<(long Offset, long Length)> Aligned(long granularity, params (long Offset, long Length)[] writes)
    {
        var result = new List<(long Offset, long Length)>();
        foreach ((long start, long end) in writes
            .Select(w => (w.Offset / granularity * granularity, (w.Offset + w.Length + granularity - 1) / granularity * granularity))
            .OrderBy(r => r.Item1))
        {
            if (result.Count > 0 && result[^1].Offset + result[^1].Length >= start)
            {
                long mergedEnd = Math.Max(result[^1].Offset + result[^1].Length, end);
                result[^1] = (result[^1].Offset, mergedEnd - result[^1].Offset);
            }
            else
            {
                result.Add((start, end - start));
            }
        }

        return result;
    }

    private static async Task AssertCannotConnectAsync(string path)
    {
        using var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        await Assert.ThrowsAnyAsync<SocketException>(async () => await socket.ConnectAsync(new UnixDomainSocketEndPoint(path)));
    }
}
