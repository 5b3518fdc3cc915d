using System.Security.Cryptography;

namespace Grpc.Backup.Tests.Infrastructure;

internal static class Checksums
{
    /// <summary>The MiBs (by index) in which <paramref name="path"/> differs from <paramref name="expected"/> (DemoGuestProcess.LastInstantMebibytes).</summary>
    public static IReadOnlyList<int> DifferingMebibytes(string path, IReadOnlyList<string> expected)
    {
        var differing = new List<int>();
        byte[] buffer = new byte[1024 * 1024];
        using var file = File.OpenHandle(path);
        for (int i = 0; i < expected.Count; i++)
        {
            int read = RandomAccess.Read(file, buffer, (long)i * buffer.Length);
            if (Convert.ToHexStringLower(SHA256.HashData(buffer.AsSpan(0, read)))[..8] != expected[i])
            {
                differing.Add(i);
            }
        }
        return differing;
    }

    public static string Sha256File(string path)
    {
        using var stream = File.OpenRead(path);
        return Convert.ToHexStringLower(SHA256.HashData(stream));
    }
}
