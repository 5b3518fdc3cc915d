namespace Grpc.Backup.Nbd;

/// <summary>
/// Several connections to the same export, used together for throughput (e.g. a copier reading
/// with several streams in parallel). Connections beyond the first are only opened when the
/// server advertises NBD_FLAG_CAN_MULTI_CONN, because only then are they guaranteed to see each
/// other's writes and flushes; otherwise this is a thin wrapper over a single connection.
/// </summary>
public sealed class NbdMultiConnClient : IAsyncDisposable
{
    private readonly NbdClient[] _connections;
    private int _next = -1;

    private NbdMultiConnClient(NbdClient[] connections)
    {
        _connections = connections;
        MaxRequestSize = connections.Min(c => c.MaxRequestSize);
    }

    /// <summary>The open connections (one when the export does not allow multi-conn).</summary>
    public IReadOnlyList<NbdClient> Connections => _connections;

    /// <summary>The export, as seen by the first connection (all connections agree on it).</summary>
    public NbdExportInfo Export => _connections[0].Export;

    /// <summary>Largest READ/WRITE payload per request; larger calls are split across connections.</summary>
    public int MaxRequestSize { get; }

    /// <summary>
    /// Opens the first connection with <paramref name="connect"/> and, if the export allows
    /// multi-conn, <paramref name="maxConnections"/> - 1 more.
    /// </summary>
    public static async Task<NbdMultiConnClient> ConnectAsync(Func<CancellationToken, Task<NbdClient>> connect, int maxConnections, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(connect);
        ArgumentOutOfRangeException.ThrowIfLessThan(maxConnections, 1);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(maxConnections, 64);

        var first = await connect(cancellationToken);
        if (!first.Export.CanMultiConn || maxConnections == 1)
        {
            return new NbdMultiConnClient([first]);
        }

        var others = Enumerable.Range(1, maxConnections - 1).Select(_ => connect(cancellationToken)).ToArray();
        try
        {
            await Task.WhenAll(others);
            foreach (var other in others)
            {
                CheckSameExport(first, other.Result);
            }

            return new NbdMultiConnClient([first, .. others.Select(t => t.Result)]);
        }
        catch
        {
            // Do not leak the connections that did open when another one failed.
            await first.DisposeAsync();
            foreach (var other in others.Where(t => t.IsCompletedSuccessfully))
            {
                await other.Result.DisposeAsync();
            }

            throw;
        }
    }

    /// <summary>Connects to a Unix socket with up to <paramref name="maxConnections"/> connections.</summary>
    public static Task<NbdMultiConnClient> ConnectAsync(string unixSocketPath, string exportName, int maxConnections, NbdClientOptions? options = null, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(unixSocketPath);
        ArgumentNullException.ThrowIfNull(exportName);
        return ConnectAsync(ct => NbdClient.ConnectAsync(unixSocketPath, exportName, options, ct), maxConnections, cancellationToken);
    }

    /// <summary>Connects to the export an <c>nbd+unix://</c> URI names with up to <paramref name="maxConnections"/> connections.</summary>
    public static Task<NbdMultiConnClient> ConnectAsync(NbdUri uri, int maxConnections, NbdClientOptions? options = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(uri);
        return ConnectAsync(uri.SocketPath, uri.ExportName, maxConnections, options, cancellationToken);
    }

    /// <summary>
    /// Picks the next connection round-robin, for callers that schedule requests themselves.
    /// Connections that have failed are skipped while any other is still usable.
    /// </summary>
    public NbdClient NextConnection()
    {
        NbdClient? candidate = null;
        for (var attempt = 0; attempt < _connections.Length; attempt++)
        {
            var index = (uint)Interlocked.Increment(ref _next) % (uint)_connections.Length;
            candidate = _connections[index];
            if (candidate.IsConnected)
            {
                break;
            }
        }

        // All failed: return one anyway so the caller gets its error.
        return candidate!;
    }

    /// <summary>Reads into <paramref name="buffer"/>, spreading requests over all connections.</summary>
    public ValueTask ReadAsync(long offset, Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        if (buffer.Length <= MaxRequestSize)
        {
            return NextConnection().ReadAsync(offset, buffer, cancellationToken);
        }

        CheckRange(offset, buffer.Length);
        return SpreadAsync(offset, buffer.Length, (client, pieceOffset, start, length, ct) =>
            client.ReadAsync(pieceOffset, buffer.Slice(start, length), ct), cancellationToken);
    }

    /// <summary>Writes <paramref name="data"/>, spreading requests over all connections.</summary>
    public ValueTask WriteAsync(long offset, ReadOnlyMemory<byte> data, NbdCommandFlags flags = NbdCommandFlags.None, CancellationToken cancellationToken = default)
    {
        if (data.Length <= MaxRequestSize)
        {
            return NextConnection().WriteAsync(offset, data, flags, cancellationToken);
        }

        CheckRange(offset, data.Length);
        return SpreadAsync(offset, data.Length, (client, pieceOffset, start, length, ct) =>
            client.WriteAsync(pieceOffset, data.Slice(start, length), flags, ct), cancellationToken);
    }

    public ValueTask TrimAsync(long offset, long length, NbdCommandFlags flags = NbdCommandFlags.None, CancellationToken cancellationToken = default) =>
        NextConnection().TrimAsync(offset, length, flags, cancellationToken);

    public ValueTask WriteZeroesAsync(long offset, long length, NbdCommandFlags flags = NbdCommandFlags.None, CancellationToken cancellationToken = default) =>
        NextConnection().WriteZeroesAsync(offset, length, flags, cancellationToken);

    public ValueTask<IReadOnlyList<NbdExtent>> GetBlockStatusAsync(string metaContext, long offset, long length, CancellationToken cancellationToken = default) =>
        NextConnection().GetBlockStatusAsync(metaContext, offset, length, cancellationToken);

    /// <summary>
    /// Flushes writes that have completed on any connection. One flush suffices: with multi-conn
    /// the server makes a flush on one connection cover writes completed on all of them. Callers
    /// must have awaited the writes they want covered before calling this.
    /// </summary>
    public ValueTask FlushAsync(CancellationToken cancellationToken = default) =>
        _connections[0].FlushAsync(cancellationToken);

    public async ValueTask DisposeAsync()
    {
        foreach (var connection in _connections)
        {
            await connection.DisposeAsync();
        }
    }

    private async ValueTask SpreadAsync(long offset, int length, Func<NbdClient, long, int, int, CancellationToken, ValueTask> operation, CancellationToken cancellationToken)
    {
        var pieceSize = MaxRequestSize;
        var count = (length + pieceSize - 1) / pieceSize;
        var pieces = new Task[count];
        for (var i = 0; i < count; i++)
        {
            var start = i * pieceSize;
            var pieceLength = Math.Min(pieceSize, length - start);
            pieces[i] = operation(NextConnection(), offset + start, start, pieceLength, cancellationToken).AsTask();
        }

        // Every piece must finish before returning, even after a failure, so none is still
        // touching the caller's buffer afterwards.
        await Task.WhenAll(pieces);
    }

    private void CheckRange(long offset, long length)
    {
        // Validated up front so a bad call fails as a whole instead of piecemeal.
        ArgumentOutOfRangeException.ThrowIfNegative(offset);
        if (offset > Export.Size || length > Export.Size - offset)
        {
            throw new ArgumentOutOfRangeException(nameof(offset), $"Request of {length} bytes at offset {offset} extends beyond the end of export '{Export.Name}' ({Export.Size} bytes).");
        }
    }

    private static void CheckSameExport(NbdClient first, NbdClient other)
    {
        if (other.Export.Size != first.Export.Size || other.Export.Flags != first.Export.Flags)
        {
            throw new NbdProtocolException(
                $"The server described export '{first.Export.Name}' differently on two connections (size {first.Export.Size} vs {other.Export.Size}, flags {first.Export.Flags} vs {other.Export.Flags}).");
        }
    }
}
