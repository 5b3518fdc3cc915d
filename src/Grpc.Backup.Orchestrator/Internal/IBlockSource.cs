namespace Grpc.Backup.Orchestrator.Internal;

/// <summary>A restore source read as raw data: a passed file, a block device, or an NBD export.</summary>
internal interface IBlockSource : IAsyncDisposable
{
    /// <summary>Ascending ranges covering [0, size); <c>Zero</c> ranges need not be read.</summary>
    IAsyncEnumerable<(long Offset, long Length, bool Zero)> GetExtentsAsync(long size, CancellationToken cancellationToken);

    ValueTask ReadAsync(long offset, Memory<byte> buffer, CancellationToken cancellationToken);
}
