namespace Grpc.Backup.Providers.Borg.Internal;

/// <summary>The archive a device's dirty bitmap counts from.</summary>
internal sealed record IncrementalBase(string BorgName, long SizeBytes);
