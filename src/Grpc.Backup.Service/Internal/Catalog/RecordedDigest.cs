using Grpc.Backup.Protocol;

namespace Grpc.Backup.Service.Internal.Catalog;

/// <summary>
/// A volume's digest as its provider reported it (<c>VolumeCompleted.digest</c>, <see cref="ChunkDigestList.Algorithm"/>)
/// and, when the provider streamed it, its chunk list: what verification compares a restore with, chunk by chunk.
/// </summary>
internal sealed record RecordedDigest(string Value, ChunkDigestList? Chunks);
