namespace Grpc.Backup.Providers.Directory.Internal;

/// <summary>Where the copy loop stores one volume: a sparse raw file, or a qcow2 overlay behind qemu-nbd.</summary>
internal interface IVolumeTarget : IAsyncDisposable
{
    ValueTask WriteAsync(long offset, ReadOnlyMemory<byte> data, CancellationToken cancellationToken);

    /// <summary>Makes the range read as zeros (it may already, as in a fresh sparse file).</summary>
    ValueTask WriteZeroesAsync(long offset, long length, CancellationToken cancellationToken);

    /// <summary>
    /// Reads what the image holds at a range (an overlay reads through to its base): the clean ranges an incremental's
    /// content hash needs. Never called for a range a write is in flight on.
    /// </summary>
    ValueTask ReadAsync(long offset, Memory<byte> buffer, CancellationToken cancellationToken);

    /// <summary>Ends the writing once every write has completed; the data is then in the archive's files.</summary>
    Task FinishAsync(CancellationToken cancellationToken);
}
