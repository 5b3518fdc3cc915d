using System.Net.Sockets;
using Grpc.Backup.Nbd.Internal;

namespace Grpc.Backup.Nbd;

/// <summary>
/// A connection to one NBD export. All operations are thread-safe and may be issued
/// concurrently: they are pipelined on the connection and completed as replies arrive.
/// </summary>
/// <remarks>
/// Errors: <see cref="NbdException"/> when the server fails a command (the connection stays
/// usable), <see cref="NbdProtocolException"/> when the server breaks the protocol (the
/// connection is closed), <see cref="IOException"/> when the connection is lost, and
/// <see cref="ObjectDisposedException"/> for operations pending when the client is disposed.
/// Cancelling an operation abandons it: the server's reply is discarded when it arrives.
/// </remarks>
public sealed class NbdClient : IAsyncDisposable, IDisposable
{
    /// <summary>
    /// TRIM, WRITE_ZEROES and BLOCK_STATUS carry no payload but still have a 32-bit length; larger
    /// ranges are split (or, for block status, truncated) at this conservative size.
    /// </summary>
    private const long MaxNonPayloadRequest = 1L << 30;

    private readonly NbdConnection _connection;
    private readonly uint _alignment;
    private volatile bool _disposed;

    private NbdClient(NbdConnection connection, NbdClientOptions options)
    {
        _connection = connection;
        var blockSize = connection.Negotiation.Export.BlockSize;
        _alignment = blockSize.Minimum;
        var max = Math.Min((uint)options.MaxRequestSize, blockSize.Maximum);
        MaxRequestSize = (int)Math.Max(_alignment, max / _alignment * _alignment);
    }

    /// <summary>Size, flags and block size constraints of the export.</summary>
    public NbdExportInfo Export => _connection.Negotiation.Export;

    /// <summary>Whether the server agreed to structured replies.</summary>
    public bool StructuredReplies => _connection.Negotiation.StructuredReplies;

    /// <summary>Metadata contexts the server agreed to, with their ids.</summary>
    public IReadOnlyList<NbdMetaContext> MetaContexts => _connection.Negotiation.MetaContexts;

    /// <summary>Effective largest READ/WRITE payload per request (options capped by the server).</summary>
    public int MaxRequestSize { get; }

    /// <summary>False once the connection failed or the client was disposed.</summary>
    public bool IsConnected => !_disposed && _connection.IsUsable;

    /// <summary>Requests currently in flight on this connection (a load indicator).</summary>
    public int InFlightRequests => _connection.InFlight;

    /// <summary>Connects to a server listening on a Unix domain socket and runs the handshake.</summary>
    public static async Task<NbdClient> ConnectAsync(string unixSocketPath, string exportName, NbdClientOptions? options = null, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(unixSocketPath);
        ArgumentNullException.ThrowIfNull(exportName);
        var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        try
        {
            await socket.ConnectAsync(new UnixDomainSocketEndPoint(unixSocketPath), cancellationToken);
        }
        catch (SocketException ex)
        {
            socket.Dispose();
            throw new IOException($"Cannot connect to the NBD server at Unix socket '{unixSocketPath}': {ex.Message}", ex);
        }
        catch
        {
            socket.Dispose();
            throw;
        }

        return await ConnectAsync(socket, exportName, options, cancellationToken);
    }

    /// <summary>Connects to the export an <c>nbd+unix://</c> URI names.</summary>
    public static Task<NbdClient> ConnectAsync(NbdUri uri, NbdClientOptions? options = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(uri);
        return ConnectAsync(uri.SocketPath, uri.ExportName, options, cancellationToken);
    }

    /// <summary>
    /// Runs the handshake on an already connected stream socket, e.g. one received through
    /// SCM_RIGHTS fd passing. The client takes ownership of the socket: it is disposed with the
    /// client, and also when this method fails.
    /// </summary>
    public static async Task<NbdClient> ConnectAsync(Socket connectedSocket, string exportName, NbdClientOptions? options = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(connectedSocket);
        try
        {
            ArgumentNullException.ThrowIfNull(exportName);
            var settings = (options ?? new NbdClientOptions()).Snapshot();
            if (connectedSocket.SocketType != SocketType.Stream)
            {
                throw new ArgumentException($"NBD needs a stream socket, got {connectedSocket.SocketType}.", nameof(connectedSocket));
            }

            if (connectedSocket.ProtocolType == ProtocolType.Tcp)
            {
                // Request headers are small; do not let Nagle hold them back.
                connectedSocket.NoDelay = true;
            }

            var reader = new NbdSocketReader(connectedSocket);
            var negotiation = await HandshakeAsync(connectedSocket, reader, exportName, settings, cancellationToken);
            return new NbdClient(new NbdConnection(connectedSocket, reader, negotiation, settings.MaxInFlightRequests), settings);
        }
        catch
        {
            connectedSocket.Dispose();
            throw;
        }
    }

    private static async Task<NbdNegotiation> HandshakeAsync(Socket socket, NbdSocketReader reader, string exportName, NbdClientOptions settings, CancellationToken cancellationToken)
    {
        using var timeout = settings.HandshakeTimeout == Timeout.InfiniteTimeSpan ? null : new CancellationTokenSource(settings.HandshakeTimeout);
        using var linked = timeout is null ? null : CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, timeout.Token);
        try
        {
            return await NbdHandshake.RunAsync(socket, reader, exportName, settings, linked?.Token ?? cancellationToken);
        }
        catch (OperationCanceledException ex) when (timeout?.IsCancellationRequested == true && !cancellationToken.IsCancellationRequested)
        {
            throw new TimeoutException($"The NBD handshake for export '{exportName}' did not complete within {settings.HandshakeTimeout}.", ex);
        }
        catch (SocketException ex)
        {
            throw new IOException($"The NBD handshake for export '{exportName}' failed: {ex.Message}", ex);
        }
    }

    /// <summary>
    /// Reads <paramref name="buffer"/>.Length bytes at <paramref name="offset"/>. Large reads are
    /// split into pipelined requests of at most <see cref="MaxRequestSize"/>; holes the server
    /// reports are zero-filled. On <see cref="NbdException"/> the buffer content is undefined.
    /// </summary>
    public ValueTask ReadAsync(long offset, Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        CheckRange(offset, buffer.Length, "READ");
        if (buffer.IsEmpty)
        {
            return ValueTask.CompletedTask;
        }

        if (buffer.Length <= MaxRequestSize)
        {
            return _connection.ExecuteAsync(NbdCommand.Read, 0, offset, (uint)buffer.Length, default, buffer, 0, null, cancellationToken);
        }

        return SplitAsync(NbdCommand.Read, 0, offset, buffer.Length, MaxRequestSize, default, buffer, cancellationToken);
    }

    /// <summary>Writes <paramref name="data"/> at <paramref name="offset"/>; only <see cref="NbdCommandFlags.Fua"/> applies.</summary>
    public ValueTask WriteAsync(long offset, ReadOnlyMemory<byte> data, NbdCommandFlags flags = NbdCommandFlags.None, CancellationToken cancellationToken = default)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        CheckWritable("WRITE");
        var wireFlags = CheckFlags(flags, NbdCommandFlags.Fua, "WRITE");
        CheckRange(offset, data.Length, "WRITE");
        if (data.IsEmpty)
        {
            return ValueTask.CompletedTask;
        }

        if (data.Length <= MaxRequestSize)
        {
            return _connection.ExecuteAsync(NbdCommand.Write, wireFlags, offset, (uint)data.Length, data, default, 0, null, cancellationToken);
        }

        return SplitAsync(NbdCommand.Write, wireFlags, offset, data.Length, MaxRequestSize, data, default, cancellationToken);
    }

    /// <summary>Tells the server the range is no longer needed (its content becomes undefined).</summary>
    public ValueTask TrimAsync(long offset, long length, NbdCommandFlags flags = NbdCommandFlags.None, CancellationToken cancellationToken = default)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        CheckWritable("TRIM");
        if (!Export.CanTrim)
        {
            throw new NotSupportedException($"Export '{Export.Name}' does not support TRIM.");
        }

        var wireFlags = CheckFlags(flags, NbdCommandFlags.Fua, "TRIM");
        CheckRange(offset, length, "TRIM");
        return length == 0
            ? ValueTask.CompletedTask
            : SplitAsync(NbdCommand.Trim, wireFlags, offset, length, NonPayloadPieceSize, default, default, cancellationToken);
    }

    /// <summary>
    /// Makes the range read as zeroes without sending them. <see cref="NbdCommandFlags.NoHole"/>
    /// keeps it allocated, <see cref="NbdCommandFlags.FastZero"/> fails with ENOTSUP instead of
    /// falling back to a slow write.
    /// </summary>
    public ValueTask WriteZeroesAsync(long offset, long length, NbdCommandFlags flags = NbdCommandFlags.None, CancellationToken cancellationToken = default)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        CheckWritable("WRITE_ZEROES");
        if (!Export.CanWriteZeroes)
        {
            throw new NotSupportedException($"Export '{Export.Name}' does not support WRITE_ZEROES.");
        }

        var wireFlags = CheckFlags(flags, NbdCommandFlags.Fua | NbdCommandFlags.NoHole | NbdCommandFlags.FastZero, "WRITE_ZEROES");
        CheckRange(offset, length, "WRITE_ZEROES");
        return length == 0
            ? ValueTask.CompletedTask
            : SplitAsync(NbdCommand.WriteZeroes, wireFlags, offset, length, NonPayloadPieceSize, default, default, cancellationToken);
    }

    /// <summary>
    /// Makes completed writes durable. A no-op when the server does not advertise FLUSH (it then
    /// has no volatile cache to flush).
    /// </summary>
    public ValueTask FlushAsync(CancellationToken cancellationToken = default)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        return Export.CanFlush
            ? _connection.ExecuteAsync(NbdCommand.Flush, 0, 0, 0, default, default, 0, null, cancellationToken)
            : ValueTask.CompletedTask;
    }

    /// <summary>
    /// Block status for <paramref name="metaContext"/> starting at <paramref name="offset"/>.
    /// The extents are consecutive from <paramref name="offset"/> but may cover less than
    /// <paramref name="length"/> (servers may answer partially, and very large ranges are
    /// truncated): callers loop from the end of the last extent.
    /// </summary>
    public async ValueTask<IReadOnlyList<NbdExtent>> GetBlockStatusAsync(string metaContext, long offset, long length, CancellationToken cancellationToken = default)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        ArgumentNullException.ThrowIfNull(metaContext);
        var contextId = FindContextId(metaContext);
        CheckRange(offset, length, "BLOCK_STATUS");
        if (length == 0)
        {
            return Array.Empty<NbdExtent>();
        }

        var extents = new List<NbdExtent>();
        var requestLength = (uint)Math.Min(length, NonPayloadPieceSize);
        await _connection.ExecuteAsync(NbdCommand.BlockStatus, 0, offset, requestLength, default, default, contextId, extents, cancellationToken);
        return extents;
    }

    /// <summary>Sends NBD_CMD_DISC (best effort) and closes the connection; pending operations fail.</summary>
    public ValueTask DisposeAsync()
    {
        _disposed = true;
        return _connection.DisposeAsync();
    }

    /// <inheritdoc cref="DisposeAsync"/>
    public void Dispose()
    {
        _disposed = true;
        _connection.Dispose();
    }

    private long NonPayloadPieceSize => MaxNonPayloadRequest / _alignment * _alignment;

    /// <summary>Runs a large operation as concurrent requests of at most <paramref name="pieceSize"/> bytes.</summary>
    private async ValueTask SplitAsync(NbdCommand command, ushort flags, long offset, long length, long pieceSize, ReadOnlyMemory<byte> writePayload, Memory<byte> readBuffer, CancellationToken cancellationToken)
    {
        var count = (int)((length + pieceSize - 1) / pieceSize);
        var pieces = new Task[count];
        for (var i = 0; i < count; i++)
        {
            var start = i * pieceSize;
            var pieceLength = (int)Math.Min(pieceSize, length - start);
            pieces[i] = _connection.ExecuteAsync(
                command,
                flags,
                offset + start,
                (uint)pieceLength,
                writePayload.IsEmpty ? default : writePayload.Slice((int)start, pieceLength),
                readBuffer.IsEmpty ? default : readBuffer.Slice((int)start, pieceLength),
                0,
                null,
                cancellationToken).AsTask();
        }

        // Wait for every piece, even after a failure: none may still write into the caller's buffer
        // once we return.
        await Task.WhenAll(pieces);
    }

    private void CheckRange(long offset, long length, string operation)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(offset);
        ArgumentOutOfRangeException.ThrowIfNegative(length);
        var size = Export.Size;
        if (offset > size || length > size - offset)
        {
            throw new ArgumentOutOfRangeException(nameof(offset), $"{operation} of {length} bytes at offset {offset} extends beyond the end of export '{Export.Name}' ({size} bytes).");
        }

        if (_alignment > 1 && (offset % _alignment != 0 || (length % _alignment != 0 && offset + length != size)))
        {
            throw new ArgumentException($"{operation} at offset {offset} with length {length} is not aligned to the export's minimum block size of {_alignment} bytes.", nameof(offset));
        }
    }

    private void CheckWritable(string operation)
    {
        if (Export.IsReadOnly)
        {
            throw new NotSupportedException($"Export '{Export.Name}' is read-only; {operation} is not allowed.");
        }
    }

    private ushort CheckFlags(NbdCommandFlags flags, NbdCommandFlags allowed, string operation)
    {
        var invalid = flags & ~allowed;
        if (invalid != 0)
        {
            throw new ArgumentException($"Flags {invalid} are not valid for {operation}.", nameof(flags));
        }

        if ((flags & NbdCommandFlags.Fua) != 0 && !Export.CanFua)
        {
            throw new NotSupportedException($"Export '{Export.Name}' does not support FUA.");
        }

        if ((flags & NbdCommandFlags.FastZero) != 0 && !Export.CanFastZero)
        {
            throw new NotSupportedException($"Export '{Export.Name}' does not support fast zeroing.");
        }

        return (ushort)flags;
    }

    private uint FindContextId(string metaContext)
    {
        foreach (var context in MetaContexts)
        {
            if (context.Name == metaContext)
            {
                return context.Id;
            }
        }

        throw new ArgumentException($"Meta context '{metaContext}' was not negotiated; request it in NbdClientOptions.MetaContexts.", nameof(metaContext));
    }
}
