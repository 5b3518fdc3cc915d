using Google.Protobuf;
using Google.Protobuf.WellKnownTypes;
using Grpc.Backup.Protocol;
using Grpc.Backup.Protocol.V1;
using Grpc.Core;

namespace Grpc.Backup.Provider;

/// <summary>
/// The BackupVm response stream, shared by the copy loop and its chunk workers: writes are serialised (a gRPC stream
/// takes one write at a time) and progress is thinned to a few events per second, always including the last one.
/// </summary>
public sealed class BackupEventWriter(IServerStreamWriter<BackupVmEvent> stream, TimeProvider timeProvider) : IDisposable
{
    private static readonly TimeSpan ProgressInterval = TimeSpan.FromMilliseconds(250);

    private readonly SemaphoreSlim _lock = new(1, 1);
    private long _lastProgress = long.MinValue;

    public async Task ProgressAsync(string device, long done, long total, bool force, CancellationToken cancellationToken)
    {
        long now = timeProvider.GetTimestamp();
        if (!force && _lastProgress != long.MinValue && timeProvider.GetElapsedTime(Volatile.Read(ref _lastProgress), now) < ProgressInterval)
        {
            return;
        }
        Volatile.Write(ref _lastProgress, now);
        await WriteAsync(new BackupVmEvent
        {
            Progress = new Progress { DeviceName = device, BytesDone = (ulong)done, BytesTotal = (ulong)total },
        }, cancellationToken);
    }

    public Task LogAsync(LogRecord.Types.Level level, string message, CancellationToken cancellationToken) =>
        WriteAsync(new BackupVmEvent
        {
            Log = new LogRecord { Level = level, Message = message, Time = Timestamp.FromDateTimeOffset(timeProvider.GetUtcNow()) },
        }, cancellationToken);

    public Task CompletedAsync(VolumeCompleted completed, CancellationToken cancellationToken) =>
        WriteAsync(new BackupVmEvent { VolumeCompleted = completed }, cancellationToken);

    /// <summary>Streams a volume's chunk list (<c>VolumeChunkDigests</c>) in runs of at most 1 MiB, before its VolumeCompleted.</summary>
    public async Task ChunkDigestsAsync(string device, ChunkDigestList list, CancellationToken cancellationToken)
    {
        for (int first = 0; first < list.ChunkCount; first += ChunkDigestList.DigestsPerMessage)
        {
            int count = Math.Min(ChunkDigestList.DigestsPerMessage, list.ChunkCount - first);
            await WriteAsync(new BackupVmEvent
            {
                ChunkDigests = new VolumeChunkDigests
                {
                    DeviceName = device,
                    FirstChunk = (ulong)first,
                    Digests = ByteString.CopyFrom(list.Digests.Slice(first * ChunkDigestList.DigestSize, count * ChunkDigestList.DigestSize)),
                },
            }, cancellationToken);
        }
    }

    public void Dispose() => _lock.Dispose();

    private async Task WriteAsync(BackupVmEvent message, CancellationToken cancellationToken)
    {
        await _lock.WaitAsync(cancellationToken);
        try
        {
            await stream.WriteAsync(message, cancellationToken);
        }
        finally
        {
            _lock.Release();
        }
    }
}
