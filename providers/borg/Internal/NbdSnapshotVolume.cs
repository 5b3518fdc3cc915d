using Grpc.Backup.Nbd;
using Grpc.Backup.Protocol.V1;
using Grpc.Backup.Provider;

namespace Grpc.Backup.Providers.Borg.Internal;

/// <summary>
/// A volume behind the host's NBD export. TRIM only saves the host space: an export that is read-only or refuses it
/// is read without trimming (logged once); a lost connection is a broken snapshot.
/// </summary>
internal sealed class NbdSnapshotVolume(string device, NbdSource source, BackupEventWriter events) : IVolumeSource
{
    private int _trimDisabled;

    public long Size => source.Export.Size;

    public NbdSource Source => source;

    public async ValueTask ReadAsync(long offset, Memory<byte> buffer, CancellationToken cancellationToken)
    {
        try
        {
            await source.Client.ReadAsync(offset, buffer, cancellationToken);
        }
        catch (Exception e) when (SnapshotErrors.IsNbdFailure(e) && !cancellationToken.IsCancellationRequested)
        {
            throw SnapshotErrors.Broken(device, $"reading {buffer.Length} bytes at offset {offset}", e);
        }
    }

    public async Task ReleaseAsync(long offset, long length, CancellationToken cancellationToken)
    {
        if (!source.CanTrim || Volatile.Read(ref _trimDisabled) != 0)
        {
            return;
        }
        try
        {
            await source.Client.TrimAsync(offset, length, NbdCommandFlags.None, cancellationToken);
        }
        catch (NbdException e) when (!cancellationToken.IsCancellationRequested)
        {
            if (Interlocked.Exchange(ref _trimDisabled, 1) == 0)
            {
                await events.LogAsync(LogRecord.Types.Level.Warning,
                    $"{device}: the export refused TRIM ({e.Message}); the rest is read without trimming", cancellationToken);
            }
        }
        catch (Exception e) when (SnapshotErrors.IsNbdFailure(e) && !cancellationToken.IsCancellationRequested)
        {
            throw SnapshotErrors.Broken(device, $"trimming {length} bytes at offset {offset}", e);
        }
    }

    public ValueTask DisposeAsync() => source.DisposeAsync();
}
