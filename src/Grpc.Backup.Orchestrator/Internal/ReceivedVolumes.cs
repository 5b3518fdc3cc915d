using Grpc.Backup.Protocol;
using Grpc.Backup.Protocol.V1;

namespace Grpc.Backup.Orchestrator.Internal;

/// <summary>What a BackupVm stream reported: one VolumeCompleted per volume and the chunk lists that came with them.</summary>
internal sealed record ReceivedVolumes(List<VolumeCompleted> Volumes, Dictionary<string, ChunkDigestList> ChunkDigests);
