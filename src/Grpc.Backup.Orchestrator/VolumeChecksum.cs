using System.Security.Cryptography;

namespace Grpc.Backup.Orchestrator;

/// <summary>
/// A volume's content checksum (<c>VolumeCompleted.content_sha256</c>): the lowercase hex SHA-256 of the whole volume as
/// a restore produces it. The provider reports it at backup time; verification hashes a restore the same way.
/// </summary>
public static class VolumeChecksum
{
    private const int BufferSize = 4 * 1024 * 1024;

    /// <summary>64 lowercase hex digits, or empty (the provider computed none). A provider's reply is untrusted.</summary>
    public static bool IsWellFormed(string value) =>
        value.Length == 0 || (value.Length == 64 && value.All(c => c is >= '0' and <= '9' or >= 'a' and <= 'f'));

    /// <summary>Hashes a restored raw image from start to end (holes read as zeros, as in the guest's view).</summary>
    public static async Task<string> OfFileAsync(string path, CancellationToken cancellationToken)
    {
        await using var stream = new FileStream(path, new FileStreamOptions
        {
            Mode = FileMode.Open,
            Access = FileAccess.Read,
            Options = FileOptions.SequentialScan | FileOptions.Asynchronous,
            BufferSize = 0,
        });
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        byte[] buffer = GC.AllocateUninitializedArray<byte>(BufferSize);
        int read;
        while ((read = await stream.ReadAsync(buffer, cancellationToken)) > 0)
        {
            hash.AppendData(buffer, 0, read);
        }
        return Convert.ToHexStringLower(hash.GetHashAndReset());
    }
}
