namespace Grpc.Backup.Providers.Borg.Internal;

/// <summary>The host's point-in-time view of one volume, whichever mechanism passed it.</summary>
internal interface IVolumeSource : IAsyncDisposable
{
    long Size { get; }

    /// <summary>Fills <paramref name="buffer"/> from <paramref name="offset"/>; a failure is ABORTED SNAPSHOT_BROKEN.</summary>
    ValueTask ReadAsync(long offset, Memory<byte> buffer, CancellationToken cancellationToken);

    /// <summary>Tells the host a stored range is no longer needed (NBD TRIM, or a punched hole).</summary>
    Task ReleaseAsync(long offset, long length, CancellationToken cancellationToken);
}
