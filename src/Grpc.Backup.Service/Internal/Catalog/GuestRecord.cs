namespace Grpc.Backup.Service.Internal.Catalog;

/// <summary>One guest's result within a run: sizes, duration, the bitmap mode per disk and the consistency achieved.</summary>
internal sealed record GuestRecord(string GuestId, string Archive, string State, string Error, DateTime Ended, double DurationSeconds,
    ulong BytesRead, ulong BytesStored, ulong ArchiveSize, IReadOnlyList<string> BitmapModes, string Consistency);
