using System.Globalization;
using Grpc.Backup.Protocol;

namespace Grpc.Backup.Providers.Directory.Tests.Infrastructure;

/// <summary>
/// A stopped VM's qcow2 disk with a persistent dirty bitmap, standing in for what a host tracks between backups: the
/// test writes to it with qemu-io, exports it with qemu-nbd -B, and clears the bitmap after each successful backup.
/// </summary>
internal sealed class Qcow2Disk(string path, long size)
{
    public const string Bitmap = "bm";
    public const string BitmapContext = "qemu:dirty-bitmap:" + Bitmap;

    public string Path { get; } = path;

    public long Size { get; } = size;

    public static async Task<Qcow2Disk> CreateAsync(string path, long size, int seed)
    {
        string raw = path + ".seed.raw";
        Images.CreateMixedRaw(raw, size, seed);
        await Images.RunAsync("qemu-img", "convert", "-f", "raw", "-O", "qcow2", raw, path);
        File.Delete(raw);
        await Images.RunAsync("qemu-img", "bitmap", "--add", path, Bitmap);
        return new Qcow2Disk(path, size);
    }

    /// <summary>Writes <paramref name="length"/> bytes of <paramref name="pattern"/> as a guest would; the bitmap marks them dirty.</summary>
    public Task WriteAsync(byte pattern, long offset, long length) =>
        Images.RunAsync("qemu-io", "-f", "qcow2", "-c",
            string.Create(CultureInfo.InvariantCulture, $"write -P 0x{pattern:x2} {offset} {length}"), Path);

    /// <summary>Writes zeros over a range (allocated zero clusters in qcow2), dirtying it.</summary>
    public Task ZeroAsync(long offset, long length) =>
        Images.RunAsync("qemu-io", "-f", "qcow2", "-c",
            string.Create(CultureInfo.InvariantCulture, $"write -z {offset} {length}"), Path);

    /// <summary>What the host does after a successful backup: the next one counts from here.</summary>
    public Task ClearBitmapAsync() => Images.RunAsync("qemu-img", "bitmap", "--clear", Path, Bitmap);

    public Task<string> Sha256Async() => Images.Sha256OfQcow2Async(Path, Path + ".check");

    public Task<ChunkDigestList> ChunkDigestsAsync() => Images.ChunkDigestsOfQcow2Async(Path, Path + ".check");

    /// <summary>A read-only export, with the bitmap as a meta context for an incremental backup.</summary>
    public Task<QemuNbdExport> ExportAsync(string socketPath, bool withBitmap) =>
        QemuNbdExport.ReadOnlyQcow2Async(Path, socketPath, withBitmap ? Bitmap : null);
}
