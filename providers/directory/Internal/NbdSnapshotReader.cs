using Grpc.Backup.Provider;
using Grpc.Backup.Nbd;

namespace Grpc.Backup.Providers.Directory.Internal;

/// <summary>The NBD mechanism: reads on the passed connections, TRIM after storing.</summary>
internal sealed class NbdSnapshotReader(NbdSource source) : ISnapshotReader
{
    public bool CanDiscard => source.CanTrim;

    public ValueTask ReadAsync(long offset, Memory<byte> buffer, CancellationToken cancellationToken) =>
        source.Client.ReadAsync(offset, buffer, cancellationToken);

    public async Task<string?> DiscardAsync(long offset, long length, CancellationToken cancellationToken)
    {
        try
        {
            await source.Client.TrimAsync(offset, length, NbdCommandFlags.None, cancellationToken);
            return null;
        }
        catch (NbdException e) when (!cancellationToken.IsCancellationRequested)
        {
            // An error reply: the server refused this TRIM; the connection itself is fine.
            return e.Message;
        }
    }

    public ValueTask DisposeAsync() => source.DisposeAsync();
}
