namespace Grpc.Backup.Cluster;

/// <summary>One guest's result within a <see cref="ClusterRunRecord"/>.</summary>
public sealed record ClusterGuestResult(string GuestId, string State, string Archive, string Error);
