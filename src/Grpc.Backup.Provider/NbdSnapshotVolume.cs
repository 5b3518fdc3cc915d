using Grpc.Backup.Nbd;
using Grpc.Backup.Protocol.V1;

namespace Grpc.Backup.Provider;

/// <summary>
/// A volume behind the host's NBD export (the passed connections of <see cref="NbdSource"/>), released with TRIM. An
/// export that is read-only or refuses TRIM is read without trimming (logged once); a lost connection is a broken
/// snapshot.
/// </summary>
public sealed class NbdSnapshotVolume : ISnapshotVolume
{
    private readonly string _device;
    private readonly NbdSource _source;
    private readonly BackupEventWriter _events;
    private int _trimDisabled;

    private NbdSnapshotVolume(string device, NbdSource source, BackupEventWriter events)
    {
        _device = device;
        _source = source;
        _events = events;
    }

    /// <summary>Takes over <paramref name="source"/>; says once, in the task log, when the export cannot trim.</summary>
    public static async Task<NbdSnapshotVolume> CreateAsync(string device, NbdSource source, BackupEventWriter events,
        CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(source);
        ArgumentNullException.ThrowIfNull(events);
        if (!source.CanTrim)
        {
            await events.LogAsync(LogRecord.Types.Level.Info,
                $"{device}: the export does not accept TRIM (read-only); reading without trimming", cancellationToken);
        }
        return new NbdSnapshotVolume(device, source, events);
    }

    public string Device => _device;

    public long Size => _source.Export.Size;

    /// <summary>The connections, for mapping the export with block status (<see cref="ExtentMap"/>).</summary>
    public NbdSource Source => _source;

    public async ValueTask ReadAsync(long offset, Memory<byte> buffer, CancellationToken cancellationToken)
    {
        try
        {
            await _source.Client.ReadAsync(offset, buffer, cancellationToken);
        }
        catch (Exception e) when (SnapshotErrors.IsNbdFailure(e) && !cancellationToken.IsCancellationRequested)
        {
            throw SnapshotErrors.Broken(_device, $"reading {buffer.Length} bytes at offset {offset}", e);
        }
    }

    public async Task ReleaseAsync(long offset, long length, CancellationToken cancellationToken)
    {
        if (!_source.CanTrim || Volatile.Read(ref _trimDisabled) != 0)
        {
            return;
        }
        try
        {
            await _source.Client.TrimAsync(offset, length, NbdCommandFlags.None, cancellationToken);
        }
        catch (NbdException e) when (!cancellationToken.IsCancellationRequested)
        {
            // An error reply: the server refused this TRIM; the connection itself is fine.
            if (Interlocked.Exchange(ref _trimDisabled, 1) == 0)
            {
                await _events.LogAsync(LogRecord.Types.Level.Warning,
                    $"{_device}: the export refused TRIM ({e.Message}); the rest is read without trimming", cancellationToken);
            }
        }
        catch (Exception e) when (SnapshotErrors.IsNbdFailure(e) && !cancellationToken.IsCancellationRequested)
        {
            throw SnapshotErrors.Broken(_device, $"trimming {length} bytes at offset {offset}", e);
        }
    }

    public ValueTask DisposeAsync() => _source.DisposeAsync();
}
