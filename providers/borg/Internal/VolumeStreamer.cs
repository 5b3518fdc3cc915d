using Grpc.Backup.Protocol;
using Grpc.Backup.Provider;

namespace Grpc.Backup.Providers.Borg.Internal;

/// <summary>
/// Writes one volume, as a whole disk image, into the tar stream borg reads, in offset order. Ranges to copy are read
/// from the host's snapshot with several reads in flight and written in order; ranges that read as zero are written
/// as zeros without reading; ranges the plan skips (clean in an incremental) come from the previous archive's image,
/// which is read alongside from start to end. Whatever came from the snapshot is released (TRIM, hole punch) once
/// borg has taken it, in large batches. Borg dedupes the result with its fixed 4 MiB chunker, so the unchanged blocks
/// cost no new repository space. Since every byte of the volume passes through here, its chunk digests
/// (<see cref="ChunkDigestList"/>, as a restore produces the image) come at no extra read, for full and incremental
/// backups alike.
/// </summary>
internal sealed class VolumeStreamer(string device, ISnapshotVolume source, Stream? baseImage, Stream tar, BandwidthThrottle bandwidth,
    BackupEventWriter events, int requestSize, int depth)
{
    private const long TrimBatchSize = 32L * 1024 * 1024;
    private static readonly byte[] Zeros = new byte[1024 * 1024];

    public long BytesRead { get; private set; }

    public long BytesFromBase { get; private set; }

    /// <summary>The chunk digests of the whole image written, once <see cref="StreamAsync"/> returned.</summary>
    public ChunkDigestList? ChunkDigests { get; private set; }

    public async Task StreamAsync(IReadOnlyList<PlannedExtent> plan, CancellationToken cancellationToken)
    {
        long size = source.Size;
        var trims = new TrimBatcher(TrimBatchSize, TrimBatcher.ClosingOffsets(plan), source.ReleaseAsync);
        var free = new Stack<byte[]>(Enumerable.Range(0, depth).Select(_ => GC.AllocateUninitializedArray<byte>(requestSize, pinned: true)));
        var inFlight = new Queue<(long Offset, int Length, byte[] Buffer, Task Read)>();
        byte[] scratch = GC.AllocateUninitializedArray<byte>(requestSize);
        long done = 0;
        long written = 0;
        // Every byte arrives in offset order: one Copy range of the whole volume to the digester.
        using var digester = new ChunkDigester([new PlannedExtent(0, size, ExtentAction.Copy)], size, incremental: false, baseList: null,
            readStored: null, readSize: requestSize, readDepth: 1);
        await events.ProgressAsync(device, 0, size, force: true, cancellationToken);
        try
        {
            foreach (PlannedExtent extent in plan)
            {
                for (long offset = extent.Offset; offset < extent.End; offset += requestSize)
                {
                    int length = (int)Math.Min(requestSize, extent.End - offset);
                    if (extent.Action == ExtentAction.Copy)
                    {
                        if (inFlight.Count == depth)
                        {
                            await WriteNextAsync();
                        }
                        await bandwidth.WaitAsync(length, cancellationToken);
                        byte[] buffer = free.Pop();
                        inFlight.Enqueue((offset, length, buffer, source.ReadAsync(offset, buffer.AsMemory(0, length), cancellationToken).AsTask()));
                        continue;
                    }
                    while (inFlight.Count > 0)
                    {
                        await WriteNextAsync();
                    }
                    if (extent.Action == ExtentAction.Zero)
                    {
                        await SkipBaseAsync(length);
                        await WriteZerosAsync(length);
                        await trims.AddAsync(offset, length, cancellationToken);
                    }
                    else
                    {
                        await CopyFromBaseAsync(length);
                    }
                    done += length;
                    await events.ProgressAsync(device, done, size, force: false, cancellationToken);
                }
            }
            while (inFlight.Count > 0)
            {
                await WriteNextAsync();
            }
            await trims.FlushAsync(cancellationToken);
        }
        finally
        {
            // No read may still fill a buffer once we return.
            foreach ((_, _, _, Task read) in inFlight)
            {
                await read.ContinueWith(_ => { }, CancellationToken.None, TaskContinuationOptions.None, TaskScheduler.Default);
            }
        }
        if (baseImage is not null && await baseImage.ReadAsync(scratch.AsMemory(0, 1), cancellationToken) != 0)
        {
            throw new InvalidDataException($"the previous image of {device} is longer than {size} bytes");
        }
        ChunkDigests = await digester.FinishAsync(cancellationToken);
        await events.ProgressAsync(device, size, size, force: true, cancellationToken);

        async Task WriteNextAsync()
        {
            (long offset, int length, byte[] buffer, Task read) = inFlight.Dequeue();
            await read;
            await SkipBaseAsync(length);
            await WriteAsync(buffer.AsMemory(0, length));
            free.Push(buffer);
            BytesRead += length;
            done += length;
            await trims.AddAsync(offset, length, cancellationToken);
            await events.ProgressAsync(device, done, size, force: false, cancellationToken);
        }

        async Task WriteZerosAsync(int length)
        {
            for (int written = 0; written < length;)
            {
                int piece = Math.Min(Zeros.Length, length - written);
                await WriteAsync(Zeros.AsMemory(0, piece));
                written += piece;
            }
        }

        async Task SkipBaseAsync(int length)
        {
            if (baseImage is not null)
            {
                await ReadBaseAsync(scratch.AsMemory(0, length));
            }
        }

        async Task CopyFromBaseAsync(int length)
        {
            if (baseImage is null)
            {
                throw new InvalidOperationException("a skipped range needs the previous image");
            }
            await ReadBaseAsync(scratch.AsMemory(0, length));
            await WriteAsync(scratch.AsMemory(0, length));
            BytesFromBase += length;
        }

        // Hashes while the pipe write is under way: the buffer is not reused before both are done.
        async Task WriteAsync(ReadOnlyMemory<byte> data)
        {
            ValueTask write = tar.WriteAsync(data, cancellationToken);
            await digester.AppendAsync(written, data, cancellationToken);
            written += data.Length;
            await write;
        }

        async Task ReadBaseAsync(Memory<byte> buffer)
        {
            int read = await baseImage!.ReadAtLeastAsync(buffer, buffer.Length, throwOnEndOfStream: false, cancellationToken);
            if (read != buffer.Length)
            {
                throw new InvalidDataException($"the previous image of {device} ended before {source.Size} bytes");
            }
        }
    }
}
