namespace Grpc.Backup.Service.Internal.Catalog;

/// <summary>A disk of a journaled backup.</summary>
internal sealed record JournalDisk(string DeviceName, string FormatNode, string FilterNode, string ThrottleGroup, bool Qcow2);
