using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using Grpc.Backup.Protocol.V1;

namespace Grpc.Backup.Protocol;

/// <summary>
/// A volume's chunk digests (<c>VolumeDigest</c>, algorithm <see cref="Algorithm"/>): the SHA-256 of each fixed
/// <see cref="ChunkSize"/> chunk from offset 0 (the last one may be short), and the volume's digest, the SHA-256 of
/// the concatenated chunk digests. Providers compute it while they store a volume and keep it with the backup; the host
/// computes it over a restore and compares chunk by chunk. The file form is language-neutral (the restic provider
/// writes the same): one ASCII line <c>"sha256-chunks-v1 CHUNK_SIZE VOLUME_SIZE\n"</c>, then 32 bytes per chunk.
/// </summary>
public sealed class ChunkDigestList
{
    public const string Algorithm = "sha256-chunks-v1";
    public const int ChunkSize = 4 * 1024 * 1024;
    public const int DigestSize = SHA256.HashSizeInBytes;

    /// <summary>Chunk digests per <c>VolumeChunkDigests</c> message: 1 MiB of digests.</summary>
    public const int DigestsPerMessage = 32768;

    /// <summary>The header line is short; a longer one is not this format.</summary>
    private const int MaxHeaderLength = 64;

    private static readonly byte[] FullZeroChunkDigest = SHA256.HashData(new byte[ChunkSize]);

    private readonly byte[] _digests;

    public ChunkDigestList(long volumeSize)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(volumeSize);
        VolumeSize = volumeSize;
        _digests = new byte[checked(ChunkCountOf(volumeSize) * DigestSize)];
    }

    public long VolumeSize { get; }

    public int ChunkCount => _digests.Length / DigestSize;

    /// <summary>All chunk digests, concatenated in offset order.</summary>
    public ReadOnlySpan<byte> Digests => _digests;

    public static int ChunkCountOf(long volumeSize) => checked((int)((volumeSize + ChunkSize - 1) / ChunkSize));

    /// <summary>The length of chunk <paramref name="index"/> (the last one may be short).</summary>
    public int LengthOf(int index) => (int)Math.Min(ChunkSize, VolumeSize - ((long)index * ChunkSize));

    public ReadOnlySpan<byte> this[int index] => _digests.AsSpan(index * DigestSize, DigestSize);

    public void Set(int index, ReadOnlySpan<byte> digest)
    {
        if (digest.Length != DigestSize)
        {
            throw new ArgumentException($"a chunk digest has {DigestSize} bytes, not {digest.Length}", nameof(digest));
        }
        digest.CopyTo(_digests.AsSpan(index * DigestSize, DigestSize));
    }

    /// <summary>Sets a chunk that reads as zeros; a whole chunk costs no hashing.</summary>
    public void SetZero(int index)
    {
        int length = LengthOf(index);
        Set(index, length == ChunkSize ? FullZeroChunkDigest : SHA256.HashData(new byte[length]));
    }

    /// <summary>Copies run <paramref name="digests"/> (whole digests) in from chunk <paramref name="firstChunk"/>.</summary>
    public void SetRange(int firstChunk, ReadOnlySpan<byte> digests)
    {
        if (digests.Length % DigestSize != 0 || firstChunk < 0 || (long)firstChunk * DigestSize + digests.Length > _digests.Length)
        {
            throw new ArgumentOutOfRangeException(nameof(digests), $"{digests.Length} bytes of digests at chunk {firstChunk} do not fit {ChunkCount} chunks");
        }
        digests.CopyTo(_digests.AsSpan(firstChunk * DigestSize));
    }

    /// <summary>The volume's digest: lowercase hex SHA-256 of the concatenated chunk digests.</summary>
    public string Value => Convert.ToHexStringLower(SHA256.HashData(_digests));

    public VolumeDigest ToMessage() => new() { Algorithm = Algorithm, ChunkSize = ChunkSize, Value = Value };

    /// <summary>The offset of the first chunk whose digest differs from <paramref name="other"/>'s, or null when none does.</summary>
    public long? FirstDifference(ChunkDigestList other)
    {
        int count = Math.Min(ChunkCount, other.ChunkCount);
        for (int i = 0; i < count; i++)
        {
            if (!this[i].SequenceEqual(other[i]))
            {
                return (long)i * ChunkSize;
            }
        }
        return ChunkCount == other.ChunkCount ? null : (long)count * ChunkSize;
    }

    /// <summary>
    /// Whether a provider's (untrusted) <c>VolumeDigest</c> is one this host can check: the known algorithm and chunk
    /// size and 64 lowercase hex digits; null is a provider that computed none.
    /// </summary>
    public static bool IsWellFormed(VolumeDigest? digest) =>
        digest is null
        || (digest.Algorithm == Algorithm && digest.ChunkSize == ChunkSize && digest.Value.Length == 64
            && digest.Value.All(c => c is >= '0' and <= '9' or >= 'a' and <= 'f'));

    public void WriteTo(Stream stream)
    {
        stream.Write(Encoding.ASCII.GetBytes(string.Create(CultureInfo.InvariantCulture, $"{Algorithm} {ChunkSize} {VolumeSize}\n")));
        stream.Write(_digests);
    }

    /// <summary>Reads the file form; anything else (another algorithm or chunk size, a short list) is InvalidDataException.</summary>
    public static ChunkDigestList ReadFrom(Stream stream)
    {
        var header = new StringBuilder();
        int b;
        while ((b = stream.ReadByte()) != '\n')
        {
            if (b < 0 || header.Length >= MaxHeaderLength)
            {
                throw new InvalidDataException("not a chunk digest list: no header line");
            }
            header.Append((char)b);
        }
        string[] fields = header.ToString().Split(' ');
        if (fields.Length != 3 || fields[0] != Algorithm
            || !int.TryParse(fields[1], NumberStyles.None, CultureInfo.InvariantCulture, out int chunkSize) || chunkSize != ChunkSize
            || !long.TryParse(fields[2], NumberStyles.None, CultureInfo.InvariantCulture, out long volumeSize))
        {
            throw new InvalidDataException($"not a {Algorithm} list of {ChunkSize}-byte chunks: '{header}'");
        }
        var list = new ChunkDigestList(volumeSize);
        stream.ReadExactly(list._digests);
        if (stream.ReadByte() >= 0)
        {
            throw new InvalidDataException("the chunk digest list has more digests than its volume has chunks");
        }
        return list;
    }

    public static ChunkDigestList ReadFile(string path)
    {
        using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, bufferSize: 1 << 16);
        return ReadFrom(stream);
    }

    /// <summary>Hashes a raw image from start to end (holes read as zeros, as in the guest's view).</summary>
    public static async Task<ChunkDigestList> OfFileAsync(string path, CancellationToken cancellationToken)
    {
        using var handle = File.OpenHandle(path, FileMode.Open, FileAccess.Read, FileShare.Read, FileOptions.Asynchronous);
        var list = new ChunkDigestList(RandomAccess.GetLength(handle));
        // Two buffers: the next chunk is read while this one is hashed.
        byte[][] buffers = [GC.AllocateUninitializedArray<byte>(ChunkSize), GC.AllocateUninitializedArray<byte>(ChunkSize)];
        ValueTask<int> next = list.ChunkCount > 0 ? ReadChunkAsync(handle, buffers[0], 0, list.LengthOf(0), cancellationToken) : default;
        for (int i = 0; i < list.ChunkCount; i++)
        {
            int length = await next;
            if (length != list.LengthOf(i))
            {
                throw new IOException($"{path} ended at chunk {i}: it changed while it was hashed");
            }
            if (i + 1 < list.ChunkCount)
            {
                next = ReadChunkAsync(handle, buffers[(i + 1) % 2], (long)(i + 1) * ChunkSize, list.LengthOf(i + 1), cancellationToken);
            }
            list.Set(i, SHA256.HashData(buffers[i % 2].AsSpan(0, length)));
        }
        return list;
    }

    private static async ValueTask<int> ReadChunkAsync(Microsoft.Win32.SafeHandles.SafeFileHandle handle, byte[] buffer, long offset, int length,
        CancellationToken cancellationToken)
    {
        int done = 0;
        while (done < length)
        {
            int read = await RandomAccess.ReadAsync(handle, buffer.AsMemory(done, length - done), offset + done, cancellationToken);
            if (read == 0)
            {
                break;
            }
            done += read;
        }
        return done;
    }
}
