using Grpc.Backup.Orchestrator;
using Grpc.Backup.Orchestrator.Internal;
using Grpc.Backup.Tests.Infrastructure;
using Microsoft.Win32.SafeHandles;

namespace Grpc.Backup.Tests;

/// <summary>
/// A file restore source's holes (SEEK_DATA/SEEK_HOLE) are zero ranges the copy never reads; a source the provider cut
/// short after the host checked its size fails as a short read would, instead of restoring its tail as zeros.
/// </summary>
public sealed class SparseRestoreSourceTests
{
    private const long Size = 64L << 20;

    [Fact]
    public async Task A_sparse_files_holes_are_zero_ranges_and_its_data_ranges_cover_every_written_byte()
    {
        using var work = new TempDirectory();
        string path = work.File("sparse.raw");
        (long Offset, int Length)[] written = [(1L << 20, 8192), (20L << 20, 4096), (Size - 4096, 4096)];
        using (SafeFileHandle file = File.OpenHandle(path, FileMode.CreateNew, FileAccess.Write))
        {
            RandomAccess.SetLength(file, Size);
            foreach (var (offset, length) in written)
            {
                RandomAccess.Write(file, Enumerable.Repeat((byte)0xA5, length).ToArray(), offset);
            }
        }

        await using var source = new FileBlockSource(File.OpenHandle(path));
        var extents = new List<(long Offset, long Length, bool Zero)>();
        await foreach (var extent in source.GetExtentsAsync(Size, CancellationToken.None))
        {
            extents.Add(extent);
        }

        long next = 0;
        foreach (var (offset, length, _) in extents)
        {
            Assert.Equal(next, offset);
            Assert.True(length > 0);
            next = offset + length;
        }
        Assert.Equal(Size, next);
        foreach (var (offset, length) in written)
        {
            Assert.Contains(extents, e => !e.Zero && e.Offset <= offset && offset + length <= e.Offset + e.Length);
        }
        // File systems allocate in blocks of up to a few pages; most of the 64 MiB must be holes that are not read.
        Assert.True(extents.Where(e => e.Zero).Sum(e => e.Length) > Size - (4L << 20), string.Join(", ", extents));
    }

    [Fact]
    public async Task A_source_cut_short_after_its_size_was_checked_fails_instead_of_restoring_zeros()
    {
        using var work = new TempDirectory();
        string path = work.File("cut.raw");
        using (SafeFileHandle file = File.OpenHandle(path, FileMode.CreateNew, FileAccess.Write))
        {
            RandomAccess.SetLength(file, Size);
            RandomAccess.Write(file, new byte[] { 1, 2, 3 }, 0);
        }
        await using var source = new FileBlockSource(File.OpenHandle(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite));
        // The provider owns the file and truncates it after the host's size check.
        using (SafeFileHandle file = File.OpenHandle(path, FileMode.Open, FileAccess.Write, FileShare.ReadWrite))
        {
            RandomAccess.SetLength(file, Size / 2);
        }

        var error = await Assert.ThrowsAsync<BackupException>(async () =>
        {
            await foreach (var (offset, length, zero) in source.GetExtentsAsync(Size, CancellationToken.None))
            {
                if (!zero)
                {
                    await source.ReadAsync(offset, new byte[Math.Min(length, 1 << 20)], CancellationToken.None);
                }
            }
        });
        Assert.Contains("before its declared size", error.Message);
    }
}
