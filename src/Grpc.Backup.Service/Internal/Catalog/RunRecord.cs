namespace Grpc.Backup.Service.Internal.Catalog;

/// <summary>One job run (or one-off backup or restore task) in the catalog.</summary>
internal sealed record RunRecord(string TaskId, string Kind, string Job, string Storage, DateTime Started, DateTime? Ended, string State,
    string Error, IReadOnlyList<GuestRecord> Guests);
