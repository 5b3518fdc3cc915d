using Grpc.Backup.Protocol;
using Grpc.Backup.Protocol.V1;
using Grpc.Backup.Qemu;

namespace Grpc.Backup.Orchestrator.Internal;

/// <summary>
/// Gathers the chunk lists a provider streams in <c>VolumeChunkDigests</c> (untrusted): only for the request's volumes,
/// in order from chunk 0, whole digests, never past the volume's chunk count (so memory is bounded by what the host
/// declared), and at the volume's completion the list must be whole and combine to its <c>VolumeCompleted.digest</c>.
/// </summary>
internal sealed class ChunkDigestCollector(IReadOnlyList<SnapshotExport> exports)
{
    private readonly Dictionary<string, (ChunkDigestList List, int Next)> _lists = new(StringComparer.Ordinal);

    public Dictionary<string, ChunkDigestList> Completed { get; } = new(StringComparer.Ordinal);

    public void Add(VolumeChunkDigests run)
    {
        string device = run.DeviceName;
        SnapshotExport export = exports.FirstOrDefault(x => x.DeviceName == device)
            ?? throw new BackupException($"provider sent chunk digests for unknown volume '{ProviderText.Sanitize(device, 64)}'");
        if (Completed.ContainsKey(device))
        {
            throw new BackupException($"provider sent chunk digests for {device} after its completion");
        }
        if (!_lists.TryGetValue(device, out var state))
        {
            state = (new ChunkDigestList((long)export.SizeBytes), 0);
        }
        int length = run.Digests.Length;
        if (length == 0 || length % ChunkDigestList.DigestSize != 0 || length > ChunkDigestList.DigestsPerMessage * ChunkDigestList.DigestSize
            || run.FirstChunk != (ulong)state.Next || state.Next + (length / ChunkDigestList.DigestSize) > state.List.ChunkCount)
        {
            throw new BackupException($"provider sent malformed chunk digests for {device}: {length} bytes at chunk {run.FirstChunk}, "
                + $"expected whole 32-byte digests (at most {ChunkDigestList.DigestsPerMessage}) from chunk {state.Next} of {state.List.ChunkCount}");
        }
        state.List.SetRange(state.Next, run.Digests.Span);
        _lists[device] = (state.List, state.Next + (length / ChunkDigestList.DigestSize));
    }

    /// <summary>Checks a completed volume's digest against the list it streamed (if it streamed one).</summary>
    public void Complete(VolumeCompleted done)
    {
        if (!ChunkDigestList.IsWellFormed(done.Digest))
        {
            throw new BackupException($"provider reported a digest for {done.DeviceName} this host cannot check: algorithm "
                + $"'{ProviderText.Sanitize(done.Digest.Algorithm, 32)}', chunk size {done.Digest.ChunkSize}; expected {ChunkDigestList.Algorithm}, "
                + $"{ChunkDigestList.ChunkSize}, 64 lowercase hex digits");
        }
        if (!_lists.Remove(done.DeviceName, out var state))
        {
            // A volume of size 0 has an empty list: nothing was streamed, yet it is whole.
            SnapshotExport export = exports.First(x => x.DeviceName == done.DeviceName);
            if (done.Digest is null || export.SizeBytes > 0)
            {
                return;
            }
            state = (new ChunkDigestList(0), 0);
        }
        if (done.Digest is null)
        {
            throw new BackupException($"provider sent chunk digests for {done.DeviceName} but no digest in its VolumeCompleted");
        }
        if (state.Next != state.List.ChunkCount)
        {
            throw new BackupException($"provider sent {state.Next} of {state.List.ChunkCount} chunk digests for {done.DeviceName}");
        }
        if (state.List.Value != done.Digest.Value)
        {
            throw new BackupException($"provider's chunk digests for {done.DeviceName} combine to {state.List.Value}, not its digest {done.Digest.Value}");
        }
        Completed[done.DeviceName] = state.List;
    }
}
