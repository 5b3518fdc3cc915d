namespace Grpc.Backup.Providers.Directory.Tests.Infrastructure;

/// <summary>What a simulated host read back through RestoreVmVolumeInit.</summary>
internal sealed record RestoredVolume(string Sha256, long Size, Transport.FdKind SourceKind);
