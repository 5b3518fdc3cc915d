using System.Security.Cryptography;

namespace Grpc.Backup.Nbd.Tests;

/// <summary>Deterministic test content and checksums.</summary>
internal static class TestData
{
    public static byte[] Random(int length, int seed)
    {
        var data = new byte[length];
        new Random(seed).NextBytes(data);
        return data;
    }

    public static string Sha256(ReadOnlySpan<byte> data) => Convert.ToHexString(SHA256.HashData(data));

    public static async Task<string> Sha256OfFileAsync(string path)
    {
        await using var stream = File.OpenRead(path);
        return Convert.ToHexString(await SHA256.HashDataAsync(stream));
    }

    /// <summary>Writes <paramref name="data"/> at <paramref name="offset"/> into an existing file.</summary>
    public static void WriteAt(string path, long offset, ReadOnlySpan<byte> data)
    {
        using var handle = File.OpenHandle(path, FileMode.Open, FileAccess.Write);
        RandomAccess.Write(handle, data, offset);
    }

    public static byte[] ReadAt(string path, long offset, int length)
    {
        using var handle = File.OpenHandle(path, FileMode.Open, FileAccess.Read);
        var buffer = new byte[length];
        var read = RandomAccess.Read(handle, buffer, offset);
        Assert.Equal(length, read);
        return buffer;
    }

    /// <summary>Creates a sparse file of <paramref name="size"/> bytes.</summary>
    public static void CreateSparse(string path, long size)
    {
        using var stream = File.Create(path);
        stream.SetLength(size);
    }

    /// <summary>Merges adjacent extents with equal flags, so comparisons do not depend on how a server splits them.</summary>
    public static List<NbdExtent> Coalesce(IEnumerable<NbdExtent> extents)
    {
        var merged = new List<NbdExtent>();
        foreach (var extent in extents)
        {
            if (merged.Count > 0 && merged[^1].Flags == extent.Flags && merged[^1].End == extent.Offset)
            {
                merged[^1] = merged[^1] with { Length = merged[^1].Length + extent.Length };
            }
            else
            {
                merged.Add(extent);
            }
        }

        return merged;
    }

    /// <summary>Collects block status for the whole export, looping over partial answers like a real caller.</summary>
    public static async Task<List<NbdExtent>> MapAsync(NbdClient client, string context)
    {
        var all = new List<NbdExtent>();
        var offset = 0L;
        while (offset < client.Export.Size)
        {
            var extents = await client.GetBlockStatusAsync(context, offset, client.Export.Size - offset);
            Assert.NotEmpty(extents);
            Assert.Equal(offset, extents[0].Offset);
            all.AddRange(extents);
            offset = extents[^1].End;
        }

        return Coalesce(all);
    }
}
