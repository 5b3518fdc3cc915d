using System.Buffers.Binary;
using System.Net.Sockets;
using System.Runtime.CompilerServices;

namespace Grpc.Backup.Nbd.Internal;

/// <summary>
/// Transmission phase of one NBD connection: serialises request headers (and WRITE payloads)
/// onto the socket and runs the reply reader. Requests are pipelined: any number up to the
/// slot count can be in flight, and replies complete them in whatever order the server picks.
/// </summary>
internal sealed class NbdConnection : IAsyncDisposable, IDisposable
{
    /// <summary>How long disposal waits to send NBD_CMD_DISC before it just closes the socket.</summary>
    private static readonly TimeSpan s_disconnectTimeout = TimeSpan.FromSeconds(1);

    private static readonly Action<object?> s_cancel = static state =>
    {
        var request = (NbdRequest)state!;
        request.Table.Cancel(request);
    };

    private readonly Socket _socket;
    private readonly NbdRequestTable _table;
    private readonly SemaphoreSlim _sendLock = new(1, 1);
    private readonly byte[] _header = new byte[NbdProtocol.RequestSize];
    private readonly Task _readLoop;
    private int _disposed;

    public NbdConnection(Socket socket, NbdSocketReader reader, NbdNegotiation negotiation, int maxInFlight)
    {
        _socket = socket;
        Negotiation = negotiation;
        _table = new NbdRequestTable(maxInFlight);
        var replies = new NbdReplyReader(reader, _table, negotiation.StructuredReplies, negotiation.MetaContexts);
        _readLoop = Task.Run(async () =>
        {
            await replies.RunAsync();

            // The reader only stops once the connection has failed (protocol violation, lost
            // connection, disposal): hang up so the server sees it and pending sends abort.
            CloseSocket();
        });
    }

    public NbdNegotiation Negotiation { get; }

    public bool IsUsable => _table.Failure is null;

    public int InFlight => _table.InFlight;

    /// <summary>Sends one request and waits for its complete reply.</summary>
    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder))]
    public async ValueTask ExecuteAsync(
        NbdCommand command,
        ushort flags,
        long offset,
        uint length,
        ReadOnlyMemory<byte> writePayload,
        Memory<byte> readBuffer,
        uint contextId,
        List<NbdExtent>? extents,
        CancellationToken cancellationToken)
    {
        var request = await _table.RentAsync(cancellationToken);
        try
        {
            request.Command = command;
            request.Flags = flags;
            request.Offset = offset;
            request.Length = length;
            request.ReadBuffer = readBuffer;
            request.ContextId = contextId;
            request.Extents = extents;
            request.CancellationToken = cancellationToken;

            await SendAsync(request, writePayload, cancellationToken);

            // The registration is disposed before the slot is released, so a late cancellation
            // can never hit the slot's next user.
            using (cancellationToken.CanBeCanceled ? cancellationToken.UnsafeRegister(s_cancel, request) : default)
            {
                await request.AsValueTask();
            }
        }
        finally
        {
            _table.ReleaseCaller(request);
        }
    }

    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder))]
    private async ValueTask SendAsync(NbdRequest request, ReadOnlyMemory<byte> payload, CancellationToken cancellationToken)
    {
        await _sendLock.WaitAsync(cancellationToken);
        try
        {
            // Last chance to give up cleanly: nothing of this request is on the wire yet.
            cancellationToken.ThrowIfCancellationRequested();
            _table.MarkSent(request);
            WriteHeader(_header, request.Flags, request.Command, request.Cookie, request.Offset, request.Length);
            try
            {
                await _socket.SendAllAsync(_header, cancellationToken);
                if (!payload.IsEmpty)
                {
                    await _socket.SendAllAsync(payload, cancellationToken);
                }
            }
            catch (OperationCanceledException ex)
            {
                // Part of a request may be on the wire; the stream cannot be resynchronised.
                Abort(new IOException("An NBD request was cancelled while being sent; the connection was closed.", ex));
                throw;
            }
            catch (Exception ex) when (ex is SocketException or IOException or ObjectDisposedException)
            {
                var failure = new IOException($"Sending an NBD request failed: {ex.Message}", ex);
                Abort(failure);
                throw failure;
            }
        }
        finally
        {
            _sendLock.Release();
        }
    }

    private static void WriteHeader(Span<byte> header, ushort flags, NbdCommand command, ulong cookie, long offset, uint length)
    {
        BinaryPrimitives.WriteUInt32BigEndian(header, NbdProtocol.RequestMagic);
        BinaryPrimitives.WriteUInt16BigEndian(header[4..], flags);
        BinaryPrimitives.WriteUInt16BigEndian(header[6..], (ushort)command);
        BinaryPrimitives.WriteUInt64BigEndian(header[8..], cookie);
        BinaryPrimitives.WriteUInt64BigEndian(header[16..], (ulong)offset);
        BinaryPrimitives.WriteUInt32BigEndian(header[24..], length);
    }

    /// <summary>Fails all requests and closes the socket without saying goodbye.</summary>
    private void Abort(Exception failure)
    {
        _table.Fail(failure);
        CloseSocket();
    }

    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }

        var healthy = _table.Failure is null;
        _table.Fail(new ObjectDisposedException(nameof(NbdClient), "The NBD client was disposed while the request was pending."));
        if (healthy && await _sendLock.WaitAsync(s_disconnectTimeout))
        {
            try
            {
                // Soft disconnect: tell the server we are going so it does not log an error.
                using var timeout = new CancellationTokenSource(s_disconnectTimeout);
                await _socket.SendAllAsync(DisconnectRequest(), timeout.Token);
            }
            catch (Exception ex) when (ex is IOException or SocketException or OperationCanceledException or ObjectDisposedException)
            {
                // Best effort only; the socket is closed below either way.
            }
            finally
            {
                _sendLock.Release();
            }
        }

        CloseSocket();
        await _readLoop;
    }

    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }

        var healthy = _table.Failure is null;
        _table.Fail(new ObjectDisposedException(nameof(NbdClient), "The NBD client was disposed while the request was pending."));
        if (healthy && _sendLock.Wait(TimeSpan.Zero))
        {
            try
            {
                _socket.SendTimeout = (int)s_disconnectTimeout.TotalMilliseconds;
                _socket.Send(DisconnectRequest());
            }
            catch (Exception ex) when (ex is IOException or SocketException or ObjectDisposedException)
            {
                // Best effort only.
            }
            finally
            {
                _sendLock.Release();
            }
        }

        CloseSocket();
    }

    private static byte[] DisconnectRequest()
    {
        var request = new byte[NbdProtocol.RequestSize];
        WriteHeader(request, 0, NbdCommand.Disconnect, 0, 0, 0);
        return request;
    }

    private void CloseSocket()
    {
        try
        {
            _socket.Shutdown(SocketShutdown.Both);
        }
        catch (Exception ex) when (ex is SocketException or ObjectDisposedException)
        {
            // Already closed by the peer or by us.
        }

        _socket.Dispose();
    }
}
