namespace Grpc.Backup.Orchestrator;

/// <summary>One disk's part of <see cref="LiveRestoreProgress"/>: bytes streamed of its size (a completed disk counts whole).</summary>
public sealed record LiveRestoreDiskProgress(string DeviceName, long BytesDone, long BytesTotal, bool Independent);
