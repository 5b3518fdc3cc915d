using System.Security.Cryptography;
using Microsoft.Win32.SafeHandles;

namespace Grpc.Backup.DemoGuest;

/// <summary>
/// The guest's workload: random 64 KiB writes of random data at random offsets of every disk, without pause, through
/// the disks' FUSE exports (the guest's view). A freeze stops it between writes (none in flight) until the thaw.
/// </summary>
internal sealed class GuestWriter(IReadOnlyList<(string Name, SafeFileHandle Handle, long Size)> disks, TimeSpan interval) : IDisposable
{
    private const int BlockSize = 64 * 1024;
    private readonly SemaphoreSlim _gate = new(1, 1);
    private long _writes;

    public long Writes => Interlocked.Read(ref _writes);

    public int DiskCount => disks.Count;

    public void Dispose() => _gate.Dispose();

    public async Task RunAsync(CancellationToken cancellationToken)
    {
        byte[] block = new byte[BlockSize];
        while (!cancellationToken.IsCancellationRequested)
        {
            await _gate.WaitAsync(cancellationToken);
            try
            {
                var disk = disks[Random.Shared.Next(disks.Count)];
                RandomNumberGenerator.Fill(block);
                // The handles are opened write-through: a write has reached QEMU when it returns.
                RandomAccess.Write(disk.Handle, block, Random.Shared.NextInt64(disk.Size / BlockSize) * BlockSize);
                Interlocked.Increment(ref _writes);
            }
            finally
            {
                _gate.Release();
            }
            await Task.Delay(interval, cancellationToken);
        }
    }

    /// <summary>Stops writing: returns once no write is in flight. Writes resume after <see cref="Resume"/>.</summary>
    public Task PauseAsync(CancellationToken cancellationToken) => _gate.WaitAsync(cancellationToken);

    public void Resume() => _gate.Release();

    /// <summary>
    /// The sha256 of every disk as the guest sees it now (call while paused), and of each of its MiBs (the first 8 hex
    /// digits: enough to name the MiBs a wrong restore differs in).
    /// </summary>
    public (Dictionary<string, string> Disks, Dictionary<string, string[]> Mebibytes) HashAll()
    {
        var hashes = new Dictionary<string, string>(StringComparer.Ordinal);
        var mebibytes = new Dictionary<string, string[]>(StringComparer.Ordinal);
        byte[] buffer = new byte[1024 * 1024];
        foreach (var disk in disks)
        {
            using var sha = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
            var blocks = new List<string>();
            for (long offset = 0; offset < disk.Size; offset += buffer.Length)
            {
                int length = (int)Math.Min(buffer.Length, disk.Size - offset);
                RandomAccess.Read(disk.Handle, buffer.AsSpan(0, length), offset);
                sha.AppendData(buffer, 0, length);
                blocks.Add(Convert.ToHexStringLower(SHA256.HashData(buffer.AsSpan(0, length)))[..8]);
            }
            hashes[disk.Name] = Convert.ToHexStringLower(sha.GetHashAndReset());
            mebibytes[disk.Name] = [.. blocks];
        }
        return (hashes, mebibytes);
    }
}
