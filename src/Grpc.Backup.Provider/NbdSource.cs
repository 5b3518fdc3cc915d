using System.Net.Sockets;
using Grpc.Backup.Nbd;

namespace Grpc.Backup.Provider;

/// <summary>
/// The host's point-in-time export of one volume: the NBD connections on the sockets it passed (one, or more when it
/// offered extra connections and the export allows multi-conn), with one meta context negotiated.
/// </summary>
public sealed class NbdSource : IAsyncDisposable
{
    private NbdSource(NbdMultiConnClient client, string metaContext)
    {
        Client = client;
        MetaContext = client.Connections[0].MetaContexts.Any(c => c.Name == metaContext) ? metaContext : null;
    }

    public NbdMultiConnClient Client { get; }

    public NbdExportInfo Export => Client.Export;

    /// <summary>The meta context the server agreed to, or null when it offered none (then the disk is all data).</summary>
    public string? MetaContext { get; }

    /// <summary>
    /// TRIM is only possible on a writable export that advertises it; a read-only export (an offline VM exported with
    /// qemu-nbd -r) simply has nothing to release.
    /// </summary>
    public bool CanTrim => !Export.IsReadOnly && Export.CanTrim;

    /// <summary>
    /// Runs the NBD handshake on <paramref name="sockets"/> (taking ownership of all of them). Extra sockets the export
    /// cannot use, because it does not allow multi-conn, are closed.
    /// </summary>
    public static async Task<NbdSource> ConnectAsync(IReadOnlyList<Socket> sockets, string exportName, string metaContext,
        bool requireContext, int requestSize, int depth, CancellationToken cancellationToken)
    {
        var options = new NbdClientOptions
        {
            MaxRequestSize = requestSize,
            MaxInFlightRequests = Math.Max(16, depth * 2),
            RequireMetaContexts = requireContext,
            // Only this context: with a bitmap, asking the export for anything else outside the dirty areas fails.
            MetaContexts = { metaContext },
        };
        int next = -1;
        try
        {
            NbdMultiConnClient client = await NbdMultiConnClient.ConnectAsync(
                token => NbdClient.ConnectAsync(sockets[Interlocked.Increment(ref next)], exportName, options, token),
                sockets.Count, cancellationToken);
            return new NbdSource(client, metaContext);
        }
        finally
        {
            // Every socket handed to NbdClient.ConnectAsync is owned by it, even when it fails; close the rest.
            for (int i = Volatile.Read(ref next) + 1; i < sockets.Count; i++)
            {
                sockets[i].Dispose();
            }
        }
    }

    public ValueTask DisposeAsync() => Client.DisposeAsync();
}
