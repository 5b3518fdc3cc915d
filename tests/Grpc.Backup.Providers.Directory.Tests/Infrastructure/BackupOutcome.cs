using Grpc.Backup.Protocol;
using Grpc.Backup.Protocol.V1;

namespace Grpc.Backup.Providers.Directory.Tests.Infrastructure;

/// <summary>A finished backup as the simulated host saw it.</summary>
internal sealed record BackupOutcome(string ArchiveName, IReadOnlyDictionary<string, IncrementalChoice> Choices,
    IReadOnlyList<BackupVmEvent> Events, BackupStats Stats)
{
    public VolumeCompleted Completed(string device) =>
        Events.Where(e => e.EventCase == BackupVmEvent.EventOneofCase.VolumeCompleted)
            .Select(e => e.VolumeCompleted)
            .Single(v => v.DeviceName == device);

    /// <summary>The chunk list streamed before the volume's VolumeCompleted (VolumeChunkDigests, in order).</summary>
    public ChunkDigestList ChunkDigests(string device, long size)
    {
        var runs = Events.Where(e => e.EventCase == BackupVmEvent.EventOneofCase.ChunkDigests && e.ChunkDigests.DeviceName == device)
            .Select(e => e.ChunkDigests).ToList();
        var list = new ChunkDigestList(size);
        foreach (VolumeChunkDigests run in runs)
        {
            list.SetRange((int)run.FirstChunk, run.Digests.Span);
        }
        return list;
    }
}
