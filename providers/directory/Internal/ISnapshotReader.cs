namespace Grpc.Backup.Providers.Directory.Internal;

/// <summary>
/// Reads one volume's point-in-time snapshot from the host and gives back what has been stored: an NBD export (TRIM)
/// or a passed file (punch-hole). Any failure other than a refused discard is a broken snapshot.
/// </summary>
internal interface ISnapshotReader : IAsyncDisposable
{
    /// <summary>False when the source cannot release anything (a read-only export): nothing is discarded then.</summary>
    bool CanDiscard { get; }

    /// <summary>Fills <paramref name="buffer"/> from <paramref name="offset"/>; IOException when the snapshot broke.</summary>
    ValueTask ReadAsync(long offset, Memory<byte> buffer, CancellationToken cancellationToken);

    /// <summary>
    /// Releases a stored range on the host (its fleecing space and its copy-before-write obligation). Returns the
    /// refusal's message when the source does not support it; throws IOException when the snapshot broke.
    /// </summary>
    Task<string?> DiscardAsync(long offset, long length, CancellationToken cancellationToken);
}
