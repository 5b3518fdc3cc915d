using System.Security.Cryptography;
using Grpc.Backup.Protocol;

namespace Grpc.Backup.Providers.Directory.Tests.Infrastructure;

/// <summary>Source images for the tests, built with real QEMU tools, and their content hashes.</summary>
internal static class Images
{
    public const long MiB = 1024 * 1024;

    /// <summary>A sparse raw file of <paramref name="size"/> bytes.</summary>
    public static void CreateSparse(string path, long size)
    {
        using var handle = File.OpenHandle(path, FileMode.CreateNew, FileAccess.ReadWrite);
        RandomAccess.SetLength(handle, size);
    }

    /// <summary>Writes <paramref name="length"/> bytes of seeded random data at <paramref name="offset"/>.</summary>
    public static void WriteRandom(string path, long offset, long length, int seed)
    {
        var random = new Random(seed);
        byte[] buffer = new byte[MiB];
        using var handle = File.OpenHandle(path, FileMode.Open, FileAccess.Write);
        for (long done = 0; done < length; done += buffer.Length)
        {
            random.NextBytes(buffer);
            RandomAccess.Write(handle, buffer.AsSpan(0, (int)Math.Min(buffer.Length, length - done)), offset + done);
        }
    }

    /// <summary>Writes real (allocated) zeros, as a guest that zeroes a region does.</summary>
    public static void WriteZeros(string path, long offset, long length)
    {
        using var handle = File.OpenHandle(path, FileMode.Open, FileAccess.Write);
        byte[] zeros = new byte[MiB];
        for (long done = 0; done < length; done += zeros.Length)
        {
            RandomAccess.Write(handle, zeros.AsSpan(0, (int)Math.Min(zeros.Length, length - done)), offset + done);
        }
    }

    /// <summary>
    /// The test's usual disk: random data, a never-written hole, a region of written zeros, random data again.
    /// </summary>
    public static void CreateMixedRaw(string path, long size, int seed)
    {
        CreateSparse(path, size);
        long quarter = size / 4;
        WriteRandom(path, 0, quarter + quarter / 2, seed);               // [0, 3/8) random
        // [3/8, 5/8) hole
        WriteZeros(path, 5 * size / 8, size / 8);                        // [5/8, 6/8) written zeros
        WriteRandom(path, 6 * size / 8, size / 4, seed + 1);             // [6/8, 1) random
    }

    public static async Task<string> Sha256OfFileAsync(string path)
    {
        await using var stream = File.OpenRead(path);
        return Convert.ToHexStringLower(await SHA256.HashDataAsync(stream));
    }

    /// <summary>The hash of what a qcow2 image reads as (its guest-visible content, backing chain included).</summary>
    public static async Task<string> Sha256OfQcow2Async(string path, string scratch)
    {
        string raw = scratch + ".raw";
        await RunAsync("qemu-img", "convert", "-U", "-f", "qcow2", "-O", "raw", path, raw);
        try
        {
            return await Sha256OfFileAsync(raw);
        }
        finally
        {
            File.Delete(raw);
        }
    }

    /// <summary>The chunk list (VolumeDigest, sha256-chunks-v1) of what a qcow2 image reads as, backing chain included.</summary>
    public static async Task<ChunkDigestList> ChunkDigestsOfQcow2Async(string path, string scratch)
    {
        string raw = scratch + ".raw";
        await RunAsync("qemu-img", "convert", "-U", "-f", "qcow2", "-O", "raw", path, raw);
        try
        {
            return await ChunkDigestList.OfFileAsync(raw, CancellationToken.None);
        }
        finally
        {
            File.Delete(raw);
        }
    }

    /// <summary>Allocated bytes of a file, as du reports them.</summary>
    public static async Task<long> AllocatedBytesAsync(string path)
    {
        string output = await RunAsync("du", "-B1", "--", path);
        return long.Parse(output.Split('\t')[0], System.Globalization.CultureInfo.InvariantCulture);
    }

    public static async Task<string> RunAsync(string program, params string[] arguments)
    {
        var (exitCode, stdout, stderr) = await ChildProcess.RunAsync(program, arguments);
        if (exitCode != 0)
        {
            throw new InvalidOperationException($"{program} {string.Join(' ', arguments)} exited with {exitCode}: {stderr}");
        }
        return stdout;
    }
}
