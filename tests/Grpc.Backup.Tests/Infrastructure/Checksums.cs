using System.Security.Cryptography;

namespace Grpc.Backup.Tests.Infrastructure;

internal static class Checksums
{
    public static string Sha256File(string path)
    {
        using var stream = File.OpenRead(path);
        return Convert.ToHexStringLower(SHA256.HashData(stream));
    }
}
