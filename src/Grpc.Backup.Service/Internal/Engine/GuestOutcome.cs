namespace Grpc.Backup.Service.Internal.Engine;

/// <summary>What one guest's backup produced, whichever runner made it.</summary>
internal sealed record GuestOutcome(string Archive, string Consistency, IReadOnlyList<string> BitmapModes, ulong BytesRead, ulong ArchiveSize);
