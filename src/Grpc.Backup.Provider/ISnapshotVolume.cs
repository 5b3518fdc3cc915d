namespace Grpc.Backup.Provider;

/// <summary>
/// The host's point-in-time view of one volume, whichever mechanism passed it (<see cref="NbdSnapshotVolume"/>,
/// <see cref="FileSnapshotVolume"/>): read, then released once stored, so the host's fleecing space shrinks as the copy
/// goes. Every C# provider's snapshot reads go through it.
/// </summary>
public interface ISnapshotVolume : IAsyncDisposable
{
    string Device { get; }

    long Size { get; }

    /// <summary>Fills <paramref name="buffer"/> from <paramref name="offset"/>; a failure is ABORTED SNAPSHOT_BROKEN.</summary>
    ValueTask ReadAsync(long offset, Memory<byte> buffer, CancellationToken cancellationToken);

    /// <summary>
    /// Tells the host a stored range is no longer needed (NBD TRIM, or a punched hole). Releasing only saves the host
    /// space: a source that refuses it is read on without releasing (the first refusal is logged); a lost connection or
    /// a failing file is ABORTED SNAPSHOT_BROKEN.
    /// </summary>
    Task ReleaseAsync(long offset, long length, CancellationToken cancellationToken);
}
