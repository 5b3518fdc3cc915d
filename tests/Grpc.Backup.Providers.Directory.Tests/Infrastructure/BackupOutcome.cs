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
}
