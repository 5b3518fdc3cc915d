namespace Grpc.Backup.Providers.Directory.Internal;

/// <summary>What copying one volume did: bytes read from the snapshot and bytes of data written to the archive.</summary>
internal readonly record struct VolumeCopyResult(long BytesRead, long BytesStored);
