namespace Grpc.Backup.Nbd.Internal;

/// <summary>
/// The upstream side of one guarded client connection: one NBD connection per metadata context, each negotiating that
/// context alone, because QEMU answers a BLOCK_STATUS for every context the connection negotiated, and with a dirty
/// bitmap restricting the snapshot, <c>base:allocation</c> outside the dirty areas fails. Data commands use the first.
/// </summary>
internal sealed class GuardUpstream : IAsyncDisposable
{
    private readonly NbdClient[] _clients;

    private GuardUpstream(NbdClient[] clients) => _clients = clients;

    /// <summary>The connection READ and TRIM go to.</summary>
    public NbdClient Data => _clients[0];

    public NbdExportInfo Export => _clients[0].Export;

    /// <summary>Negotiated context names, in the options' order.</summary>
    public IReadOnlyList<string> Contexts => _clients.SelectMany(c => c.MetaContexts).Select(c => c.Name).ToArray();

    /// <summary>The connection that negotiated context <paramref name="index"/> (of <see cref="Contexts"/>).</summary>
    public NbdClient ForContext(int index) => _clients[index];

    public static async Task<GuardUpstream> ConnectAsync(NbdGuardOptions options, CancellationToken cancellationToken)
    {
        var clients = new List<NbdClient>();
        try
        {
            string?[] contexts = options.MetaContexts.Count == 0 ? [null] : [.. options.MetaContexts];
            foreach (var context in contexts)
            {
                var clientOptions = new NbdClientOptions { RequireMetaContexts = true, HandshakeTimeout = options.UpstreamHandshakeTimeout };
                if (context is not null)
                {
                    clientOptions.MetaContexts.Add(context);
                }

                clients.Add(options.UpstreamConnector is { } connect
                    ? await NbdClient.ConnectAsync(await connect(cancellationToken), options.ExportName, clientOptions, cancellationToken)
                    : await NbdClient.ConnectAsync(options.UpstreamSocketPath!, options.ExportName, clientOptions, cancellationToken));
            }

            return new GuardUpstream([.. clients]);
        }
        catch
        {
            foreach (var client in clients)
            {
                await client.DisposeAsync();
            }

            throw;
        }
    }

    public async ValueTask DisposeAsync()
    {
        foreach (var client in _clients)
        {
            await client.DisposeAsync();
        }
    }
}
