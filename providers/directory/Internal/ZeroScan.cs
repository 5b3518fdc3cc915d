namespace Grpc.Backup.Providers.Directory.Internal;

/// <summary>
/// Splits a buffer into zero and data runs at a block granularity, so that zeros the guest wrote are stored as holes
/// (raw) or zero clusters (qcow2) instead of bytes. The scan is vectorised; on random data each block stops at its
/// first byte, so it costs next to nothing.
/// </summary>
internal static class ZeroScan
{
    /// <summary>The granularity: a file system block, as qemu-img convert's default -S 4k.</summary>
    public const int BlockSize = 4096;

    public static void Split(ReadOnlySpan<byte> data, List<DataRun> runs)
    {
        runs.Clear();
        int start = 0;
        bool? current = null;
        for (int block = 0; block < data.Length; block += BlockSize)
        {
            int length = Math.Min(BlockSize, data.Length - block);
            bool zero = !data.Slice(block, length).ContainsAnyExcept((byte)0);
            if (current is null)
            {
                current = zero;
            }
            else if (current != zero)
            {
                runs.Add(new DataRun(start, block - start, current.Value));
                start = block;
                current = zero;
            }
        }
        if (current is not null)
        {
            runs.Add(new DataRun(start, data.Length - start, current.Value));
        }
    }
}
