using System.Net.Sockets;
using System.Security.Cryptography;
using Grpc.Backup.Qemu.Tests.Infrastructure;

namespace Grpc.Backup.Qemu.Tests.SnapshotAccess;

/// <summary>A stopped VM's image exported read-only by qemu-nbd, with its bitmap handled offline.</summary>
public sealed class OfflineImageExportTests : IDisposable
{
    private const long MiB = 1 << 20;
    private const string Bitmap = "grpc-backup-store1-disk0";

    private readonly string _directory = Directory.CreateTempSubdirectory("offline-export-").FullName;
    private readonly NbdTool _nbd;

    public OfflineImageExportTests() => _nbd = new NbdTool(_directory);

    private string Image => Path.Combine(_directory, "disk0.qcow2");

    private string Socket => Path.Combine(_directory, "nbd.sock");

    public void Dispose() => Directory.Delete(_directory, recursive: true);

    [Fact(Timeout = TestTimeouts.Test)]
    public async Task Reuse_exports_the_image_and_its_dirty_extents_and_success_clears_the_bitmap()
    {
        await CreateImageAsync();
        await QemuProcess.RunToolAsync("qemu-img", "bitmap", "--add", "-f", "qcow2", Image, Bitmap);
        await QemuProcess.RunToolAsync("qemu-io", "-f", "qcow2", "-c", "write -P 7 1M 4k", "-c", "write -P 7 9M 128k", Image);
        string expected = await ImageSha256Async();

        await using (OfflineImageExport export = await OfflineImageExport.StartAsync(Options(BitmapRequest.Use)))
        {
            Assert.Equal(BitmapOutcome.Reuse, export.Export.Bitmap);
            Assert.Equal($"qemu:dirty-bitmap:{Bitmap}", export.Export.BitmapContext);
            Assert.Equal((ulong)(16 * MiB), export.Export.SizeBytes);
            string uri = NbdTool.Uri(export.Export);
            Assert.Equal([(1 * MiB, 64 * 1024L), (9 * MiB, 128 * 1024L)], await _nbd.DirtyExtentsAsync(uri, export.Export.BitmapContext!));
            Assert.Equal(expected, await _nbd.Sha256Async(uri));
            Assert.NotNull(await _nbd.WriteErrorAsync(uri, 0, 4096)); // read-only
            await export.FinishAsync(backupSucceeded: true);
            await export.SettleBitmapAsync(providerCommitted: true);
        }

        await AssertNotListeningAsync();
        await using (OfflineImageExport next = await OfflineImageExport.StartAsync(Options(BitmapRequest.Use)))
        {
            Assert.Equal(BitmapOutcome.Reuse, next.Export.Bitmap);
            Assert.Empty(await _nbd.DirtyExtentsAsync(NbdTool.Uri(next.Export), next.Export.BitmapContext!));
        }
    }

    [Fact(Timeout = TestTimeouts.Test)]
    public async Task A_backup_the_provider_did_not_commit_leaves_the_bitmap_as_it_was()
    {
        await CreateImageAsync();
        await QemuProcess.RunToolAsync("qemu-img", "bitmap", "--add", "-f", "qcow2", Image, Bitmap);
        await QemuProcess.RunToolAsync("qemu-io", "-f", "qcow2", "-c", "write -P 7 1M 4k", Image);

        await using (OfflineImageExport export = await OfflineImageExport.StartAsync(Options(BitmapRequest.Use)))
        {
            Assert.Equal(BitmapOutcome.Reuse, export.Export.Bitmap);
            await export.FinishAsync(backupSucceeded: true);
            // BackupCleanup(success=true) failed.
            await export.SettleBitmapAsync(providerCommitted: false);
        }

        await using (OfflineImageExport next = await OfflineImageExport.StartAsync(Options(BitmapRequest.Use)))
        {
            Assert.Equal(BitmapOutcome.Reuse, next.Export.Bitmap);
            Assert.Equal([(1 * MiB, 64 * 1024L)], await _nbd.DirtyExtentsAsync(NbdTool.Uri(next.Export), next.Export.BitmapContext!));
        }

        // An uncommitted full backup adds no bitmap: the next one is full again.
        await QemuProcess.RunToolAsync("qemu-img", "bitmap", "--remove", "-f", "qcow2", Image, Bitmap);
        await using (OfflineImageExport full = await OfflineImageExport.StartAsync(Options(BitmapRequest.Use)))
        {
            Assert.Equal(BitmapOutcome.New, full.Export.Bitmap);
            await full.FinishAsync(backupSucceeded: true);
        }

        await using OfflineImageExport again = await OfflineImageExport.StartAsync(Options(BitmapRequest.Use));
        Assert.Equal(BitmapOutcome.New, again.Export.Bitmap);
    }

    [Fact(Timeout = TestTimeouts.Test)]
    public async Task Inconsistent_bitmap_is_removed_and_reported_new_and_a_fresh_one_follows_success()
    {
        await CreateImageAsync();
        await QemuProcess.RunToolAsync("qemu-img", "bitmap", "--add", "-f", "qcow2", Image, Bitmap);
        // qemu-io loads the bitmap (flagging it in-use) and then dies by SIGKILL, like a crashed VM.
        await Assert.ThrowsAsync<InvalidOperationException>(() => QemuProcess.RunToolAsync("qemu-io", "-f", "qcow2", "-c", "sigraise 9", Image));
        Assert.Contains("in-use", await QemuProcess.RunToolAsync("qemu-img", "info", "-U", "--output=json", "-f", "qcow2", Image), StringComparison.Ordinal);

        await using (OfflineImageExport export = await OfflineImageExport.StartAsync(Options(BitmapRequest.Use)))
        {
            Assert.Equal(BitmapOutcome.New, export.Export.Bitmap);
            Assert.Null(export.Export.BitmapContext);
            Assert.DoesNotContain(Bitmap, await QemuProcess.RunToolAsync("qemu-img", "info", "-U", "--output=json", "-f", "qcow2", Image), StringComparison.Ordinal);
            Assert.Equal(await ImageSha256Async(), await _nbd.Sha256Async(NbdTool.Uri(export.Export)));
            await export.FinishAsync(backupSucceeded: true);
            await export.SettleBitmapAsync(providerCommitted: true);
        }

        await using OfflineImageExport next = await OfflineImageExport.StartAsync(Options(BitmapRequest.Use));
        Assert.Equal(BitmapOutcome.Reuse, next.Export.Bitmap);
    }

    [Fact(Timeout = TestTimeouts.Test)]
    public async Task Raw_image_has_no_bitmap_and_dispose_stops_the_server()
    {
        string raw = Path.Combine(_directory, "disk1.raw");
        await File.WriteAllBytesAsync(raw, RandomNumberGenerator.GetBytes((int)(4 * MiB)));
        var options = new OfflineImageExportOptions { ImagePath = raw, Format = "raw", DeviceName = "disk1", NbdSocketPath = Socket, BitmapName = Bitmap };

        await using (OfflineImageExport export = await OfflineImageExport.StartAsync(options))
        {
            Assert.Equal(BitmapOutcome.None, export.Export.Bitmap);
            Assert.Equal(Convert.ToHexStringLower(SHA256.HashData(await File.ReadAllBytesAsync(raw))), await _nbd.Sha256Async(NbdTool.Uri(export.Export)));
        }

        await AssertNotListeningAsync();
    }

    private OfflineImageExportOptions Options(BitmapRequest request) => new()
    {
        ImagePath = Image,
        Format = "qcow2",
        DeviceName = "disk0",
        NbdSocketPath = Socket,
        BitmapName = Bitmap,
        Bitmap = request,
    };

    private async Task CreateImageAsync()
    {
        string seed = Path.Combine(_directory, "seed.raw");
        await File.WriteAllBytesAsync(seed, RandomNumberGenerator.GetBytes((int)(16 * MiB)));
        await QemuProcess.RunToolAsync("qemu-img", "convert", "-q", "-f", "raw", "-O", "qcow2", seed, Image);
        File.Delete(seed);
    }

    private async Task<string> ImageSha256Async()
    {
        string raw = Path.Combine(_directory, "check.raw");
        await QemuProcess.RunToolAsync("qemu-img", "convert", "-U", "-f", "qcow2", "-O", "raw", Image, raw);
        string sha = Convert.ToHexStringLower(SHA256.HashData(await File.ReadAllBytesAsync(raw)));
        File.Delete(raw);
        return sha;
    }

    private async Task AssertNotListeningAsync()
    {
        Assert.False(File.Exists(Socket));
        using var socket = new System.Net.Sockets.Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        await Assert.ThrowsAnyAsync<SocketException>(async () => await socket.ConnectAsync(new UnixDomainSocketEndPoint(Socket)));
    }
}
