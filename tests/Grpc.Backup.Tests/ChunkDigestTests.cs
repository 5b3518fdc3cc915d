using System.Security.Cryptography;
using Google.Protobuf;
using Grpc.Backup.Orchestrator;
using Grpc.Backup.Orchestrator.Internal;
using Grpc.Backup.Protocol;
using Grpc.Backup.Protocol.V1;
using Grpc.Backup.Provider;
using Grpc.Backup.Qemu;

namespace Grpc.Backup.Tests;

/// <summary>
/// Chunk digests (sha256-chunks-v1): the SDK's digester against a straight hash of the same bytes (full with holes,
/// incremental from a base list, a short last chunk, pieces arriving out of order), its reads of the stored chain, the
/// file form, and the host refusing a provider's malformed or inconsistent chunk list.
/// </summary>
public sealed class ChunkDigestTests
{
    private const int Chunk = ChunkDigestList.ChunkSize;
    private const long Size = 5L * Chunk + 12345;

    [Fact]
    public async Task A_full_with_holes_digests_like_the_whole_image_and_reads_nothing_back()
    {
        byte[] image = new byte[Size];
        RandomNumberGenerator.Fill(image.AsSpan(Chunk / 2, Chunk));           // chunks 0 and 1
        RandomNumberGenerator.Fill(image.AsSpan((int)(5L * Chunk), 12345));  // the short last chunk
        List<PlannedExtent> plan = [new(Chunk / 2, Chunk, ExtentAction.Copy), new(5L * Chunk, 12345, ExtentAction.Copy)];

        (ChunkDigestList list, long storedRead) = await DigestAsync(plan, image, incremental: false, baseList: null, stored: null);

        Assert.Equal(Of(image).Digests.ToArray(), list.Digests.ToArray());
        Assert.Equal(Of(image).Value, list.Value);
        Assert.Equal(0, storedRead);
    }

    [Fact]
    public async Task An_incremental_hashes_only_the_chunks_it_touches_and_reads_only_their_clean_part()
    {
        byte[] base_ = new byte[Size];
        RandomNumberGenerator.Fill(base_);
        byte[] now = base_.ToArray();
        RandomNumberGenerator.Fill(now.AsSpan(Chunk + 4096, 65536));        // inside chunk 1
        now.AsSpan(3 * Chunk - 100, 200).Clear();                           // across chunks 2 and 3, now zeros
        RandomNumberGenerator.Fill(now.AsSpan((int)(5L * Chunk), 100));     // the head of the short last chunk
        List<PlannedExtent> plan =
        [
            new(0, Chunk + 4096, ExtentAction.Skip),
            new(Chunk + 4096, 65536, ExtentAction.Copy),
            new(3L * Chunk - 100, 200, ExtentAction.Zero),
            new(5L * Chunk, 100, ExtentAction.Copy),
        ];

        (ChunkDigestList list, long storedRead) = await DigestAsync(plan, now, incremental: true, baseList: Of(base_), stored: base_);

        Assert.Equal(Of(now).Digests.ToArray(), list.Digests.ToArray());
        // Chunks 1, 2, 3 and 5 are touched; what they did not change is read back, nothing else.
        Assert.Equal(3L * Chunk + 12345 - 65536 - 200 - 100, storedRead);

        // Without the base's list (a base from before chunk digests) every clean byte is read back, and the result is the same.
        (ChunkDigestList whole, long wholeRead) = await DigestAsync(plan, now, incremental: true, baseList: null, stored: base_);
        Assert.Equal(list.Value, whole.Value);
        Assert.Equal(Size - 65536 - 200 - 100, wholeRead);
    }

    [Fact]
    public void The_file_form_round_trips_and_refuses_another_chunk_size_or_a_short_list()
    {
        byte[] image = new byte[Size];
        RandomNumberGenerator.Fill(image);
        ChunkDigestList list = Of(image);
        using var file = new MemoryStream();
        list.WriteTo(file);
        Assert.Equal($"sha256-chunks-v1 {Chunk} {Size}\n".Length + 6 * 32, file.Length);
        ChunkDigestList read = ChunkDigestList.ReadFrom(new MemoryStream(file.ToArray()));
        Assert.Equal(list.Value, read.Value);
        Assert.Null(read.FirstDifference(list));
        byte[] other = image.ToArray();
        other[3 * Chunk + 7] ^= 1;
        Assert.Equal(3L * Chunk, Of(other).FirstDifference(list));

        Assert.Throws<InvalidDataException>(() => ChunkDigestList.ReadFrom(new MemoryStream("sha256-chunks-v1 65536 10\n"u8.ToArray())));
        Assert.Throws<EndOfStreamException>(() => ChunkDigestList.ReadFrom(new MemoryStream(file.ToArray()[..^1])));
        Assert.Equal(Convert.ToHexStringLower(SHA256.HashData([])), new ChunkDigestList(0).Value);
    }

    [Fact]
    public void The_host_refuses_chunk_lists_out_of_order_too_long_for_the_volume_or_not_combining_to_the_digest()
    {
        byte[] image = new byte[Size];
        RandomNumberGenerator.Fill(image);
        ChunkDigestList list = Of(image);
        byte[] digests = list.Digests.ToArray();

        var good = new ChunkDigestCollector([Export("sda")]);
        good.Add(Run("sda", 0, digests[..64]));
        good.Add(Run("sda", 2, digests[64..]));
        good.Complete(Completed("sda", list.Value));
        Assert.Equal(list.Value, good.Completed["sda"].Value);

        Assert.Throws<BackupException>(() => new ChunkDigestCollector([Export("sda")]).Add(Run("sdb", 0, digests)));
        Assert.Throws<BackupException>(() => new ChunkDigestCollector([Export("sda")]).Add(Run("sda", 1, digests[..32])));
        Assert.Throws<BackupException>(() => new ChunkDigestCollector([Export("sda")]).Add(Run("sda", 0, [.. digests, .. digests[..32]])));
        Assert.Throws<BackupException>(() => new ChunkDigestCollector([Export("sda")]).Add(Run("sda", 0, digests[..31])));
        var partial = new ChunkDigestCollector([Export("sda")]);
        partial.Add(Run("sda", 0, digests[..64]));
        Assert.Throws<BackupException>(() => partial.Complete(Completed("sda", list.Value)));
        var wrong = new ChunkDigestCollector([Export("sda")]);
        wrong.Add(Run("sda", 0, digests));
        Assert.Throws<BackupException>(() => wrong.Complete(Completed("sda", new string('0', 64))));
        VolumeCompleted otherAlgorithm = Completed("sda", list.Value);
        otherAlgorithm.Digest.ChunkSize = 65536;
        Assert.Throws<BackupException>(() => new ChunkDigestCollector([Export("sda")]).Complete(otherAlgorithm));
    }

    private static ChunkDigestList Of(byte[] image)
    {
        var list = new ChunkDigestList(image.Length);
        for (int i = 0; i < list.ChunkCount; i++)
        {
            list.Set(i, SHA256.HashData(image.AsSpan(i * Chunk, list.LengthOf(i))));
        }
        return list;
    }

    /// <summary>Feeds the plan's Copy ranges in 256 KiB pieces, each pair swapped so a later piece waits for its turn.</summary>
    private static async Task<(ChunkDigestList, long)> DigestAsync(List<PlannedExtent> plan, byte[] image, bool incremental,
        ChunkDigestList? baseList, byte[]? stored)
    {
        using var digester = new ChunkDigester(plan, image.Length, incremental, baseList,
            stored is null ? null : (offset, buffer, _) => { stored.AsSpan((int)offset, buffer.Length).CopyTo(buffer.Span); return ValueTask.CompletedTask; },
            readSize: 65536, readDepth: 3);
        var pieces = new List<(long Offset, int Length)>();
        foreach (PlannedExtent extent in plan.Where(e => e.Action == ExtentAction.Copy))
        {
            for (long offset = extent.Offset; offset < extent.End; offset += 256 * 1024)
            {
                pieces.Add((offset, (int)Math.Min(256 * 1024, extent.End - offset)));
            }
        }
        var tasks = new List<Task>();
        for (int i = 0; i < pieces.Count; i += 2)
        {
            foreach (var (offset, length) in pieces.Skip(i).Take(2).Reverse())
            {
                tasks.Add(digester.AppendAsync(offset, image.AsMemory((int)offset, length), CancellationToken.None).AsTask());
            }
        }
        await Task.WhenAll(tasks);
        return (await digester.FinishAsync(CancellationToken.None), digester.StoredBytesRead);
    }

    private static SnapshotExport Export(string device) => new()
    {
        DeviceName = device,
        ExportName = device,
        SizeBytes = (ulong)Size,
        Bitmap = BitmapOutcome.None,
        NbdSocketPath = "/nonexistent",
    };

    private static VolumeChunkDigests Run(string device, ulong first, byte[] digests) =>
        new() { DeviceName = device, FirstChunk = first, Digests = ByteString.CopyFrom(digests) };

    private static VolumeCompleted Completed(string device, string value) =>
        new() { DeviceName = device, Digest = new VolumeDigest { Algorithm = ChunkDigestList.Algorithm, ChunkSize = ChunkDigestList.ChunkSize, Value = value } };
}
