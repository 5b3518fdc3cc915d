using System.Net.Sockets;
using System.Text.Json.Nodes;
using Grpc.Backup.Qemu.Internal;

namespace Grpc.Backup.Qemu;

/// <summary>
/// An asynchronous client for the QEMU Machine Protocol over a Unix socket, for both
/// <c>qemu-system-*</c> and <c>qemu-storage-daemon</c>.
/// </summary>
/// <remarks>
/// <para>
/// All members are thread-safe. Each request carries a unique id and one background loop reads
/// every message, matching replies to requests by id and fanning events out to
/// <see cref="CreateEventWaiter"/> and <see cref="SubscribeEvents"/>. Concurrent commands are
/// therefore safe; QEMU still executes them one at a time, in the order they were sent.
/// </para>
/// <para>
/// When the connection ends, for whatever reason, every pending and later call fails with
/// <see cref="QmpConnectionClosedException"/>; nothing waits forever on a dead peer.
/// </para>
/// </remarks>
public sealed class QmpClient : IAsyncDisposable, IDisposable
{
    private readonly Stream _stream;
    private readonly QmpMessageReader _reader;
    private readonly SemaphoreSlim _writeLock = new(1, 1);
    private readonly QmpEventDispatcher _events = new();
    private readonly Lock _lock = new();
    private readonly Dictionary<long, PendingCommand> _pending = [];
    private QmpConnectionClosedException? _closed; // guarded by _lock; set once
    private Task _readLoop = Task.CompletedTask;
    private long _lastId;
    private int _disposed;

    private QmpClient(Stream stream, QmpMessageReader reader, QmpGreeting greeting)
    {
        _stream = stream;
        _reader = reader;
        Greeting = greeting;
    }

    /// <summary>The server's greeting: QEMU version and offered capabilities.</summary>
    public QmpGreeting Greeting { get; }

    /// <summary>False once the connection has ended (peer closed, protocol error, or disposal).</summary>
    public bool IsConnected
    {
        get
        {
            lock (_lock)
            {
                return _closed is null;
            }
        }
    }

    /// <inheritdoc cref="ConnectAsync(string, QmpClientOptions?, CancellationToken)"/>
    public static Task<QmpClient> ConnectAsync(string unixSocketPath, CancellationToken cancellationToken = default)
        => ConnectAsync(unixSocketPath, options: null, cancellationToken);

    /// <summary>
    /// Connects to a QMP Unix socket, reads the greeting and leaves capabilities-negotiation mode
    /// (<c>qmp_capabilities</c>), after which commands may be executed.
    /// </summary>
    /// <exception cref="SocketException">The socket could not be connected.</exception>
    /// <exception cref="QmpConnectionClosedException">
    /// The peer closed the connection during the handshake or is not a QMP server
    /// (<see cref="Exception.InnerException"/> is then a <see cref="QmpProtocolException"/>).
    /// </exception>
    /// <exception cref="TimeoutException">The handshake took longer than <see cref="QmpClientOptions.HandshakeTimeout"/>.</exception>
    public static async Task<QmpClient> ConnectAsync(string unixSocketPath, QmpClientOptions? options, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(unixSocketPath);
        options ??= new QmpClientOptions();

        var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        QmpClient? client = null;
        using var bound = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        bound.CancelAfter(options.HandshakeTimeout);
        try
        {
            await socket.ConnectAsync(new UnixDomainSocketEndPoint(unixSocketPath), bound.Token);
            var stream = new NetworkStream(socket, ownsSocket: true);

            var reader = new QmpMessageReader(stream, options.MaxMessageBytes);
            QmpGreeting greeting = await ReadGreetingAsync(reader, bound.Token);

            client = new QmpClient(stream, reader, greeting);
            client._readLoop = Task.Run(client.ReadLoopAsync, CancellationToken.None);

            // Without arguments no capability (not even "oob") is enabled: out-of-band execution
            // buys nothing here and would give up QEMU's in-order execution of commands.
            await client.ExecuteAsync("qmp_capabilities", arguments: null, bound.Token);
            return client;
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            await DisposePartialAsync(client, socket);
            throw new TimeoutException(
                $"QMP at {unixSocketPath}: no greeting and capabilities within {options.HandshakeTimeout.TotalSeconds:0.#} s");
        }
        catch
        {
            await DisposePartialAsync(client, socket);
            throw;
        }
    }

    private static async ValueTask DisposePartialAsync(QmpClient? client, Socket socket)
    {
        if (client is not null)
        {
            await client.DisposeAsync();
        }
        else
        {
            socket.Dispose();
        }
    }

    /// <summary>
    /// Executes <paramref name="command"/> and returns its <c>return</c> value (usually an object or
    /// array; <c>{}</c> for commands without a result).
    /// </summary>
    /// <remarks>
    /// Cancellation abandons the wait but cannot stop a command QEMU has already received; its late
    /// reply is discarded. <paramref name="arguments"/> is serialized, not stored, so it may be reused.
    /// </remarks>
    /// <exception cref="QmpCommandException">QEMU reported an error for this command.</exception>
    /// <exception cref="QmpConnectionClosedException">The connection ended before the reply arrived.</exception>
    public async Task<JsonNode?> ExecuteAsync(string command, JsonObject? arguments = null, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(command);
        ObjectDisposedException.ThrowIf(Volatile.Read(ref _disposed) != 0, this);
        cancellationToken.ThrowIfCancellationRequested();

        long id = Interlocked.Increment(ref _lastId);
        byte[] request = QmpRequestSerializer.Serialize(id, command, arguments);
        var pending = new PendingCommand(command);
        lock (_lock)
        {
            if (_closed is not null)
            {
                throw _closed.Clone();
            }

            _pending.Add(id, pending);
        }

        try
        {
            await SendAsync(request, cancellationToken);
            return await pending.Task.WaitAsync(cancellationToken);
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            lock (_lock)
            {
                _pending.Remove(id);
            }

            throw;
        }
    }

    /// <summary>
    /// Runs a QMP <c>transaction</c>: all <paramref name="actions"/> take effect atomically, or none
    /// does and a <see cref="QmpCommandException"/> describes the first failure.
    /// </summary>
    /// <param name="properties">Optional transaction properties, e.g. <c>{"completion-mode":"grouped"}</c>.</param>
    public async Task TransactionAsync(IEnumerable<QmpTransactionAction> actions, JsonObject? properties = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(actions);

        var list = new JsonArray();
        foreach (QmpTransactionAction action in actions)
        {
            ArgumentNullException.ThrowIfNull(action, nameof(actions));
            list.Add(action.ToJson());
        }

        var arguments = new JsonObject { ["actions"] = list };
        if (properties is not null)
        {
            arguments["properties"] = properties.DeepClone();
        }

        await ExecuteAsync("transaction", arguments, cancellationToken);
    }

    /// <summary>
    /// Starts listening for an event now; await it later with <see cref="QmpEventWaiter.WaitAsync(CancellationToken)"/>.
    /// This is the race-free way to wait for an event a command triggers: create the waiter, execute
    /// the command, then wait.
    /// </summary>
    /// <param name="predicate">
    /// Filter on the event's <c>data</c>. It runs on the reader loop, so it must be quick and must not block.
    /// </param>
    public QmpEventWaiter CreateEventWaiter(string eventName, Func<JsonObject, bool>? predicate = null)
    {
        ArgumentException.ThrowIfNullOrEmpty(eventName);
        ObjectDisposedException.ThrowIf(Volatile.Read(ref _disposed) != 0, this);

        var waiter = new QmpEventWaiter(_events, eventName, predicate);
        _events.Add(waiter);
        return waiter;
    }

    /// <summary>
    /// Waits for the next matching event. Only events arriving after this call are seen; to wait for
    /// an event caused by a command, use <see cref="CreateEventWaiter"/> before sending it.
    /// </summary>
    public async Task<QmpEvent> WaitForEventAsync(string eventName, Func<JsonObject, bool>? predicate = null, CancellationToken cancellationToken = default)
    {
        using QmpEventWaiter waiter = CreateEventWaiter(eventName, predicate);
        return await waiter.WaitAsync(cancellationToken);
    }

    /// <summary>Subscribes to all events from now on. Dispose the subscription to stop.</summary>
    /// <param name="capacity">How many unread events may queue before the subscription fails.</param>
    public QmpEventSubscription SubscribeEvents(int capacity = 1024)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(capacity, 1);
        ObjectDisposedException.ThrowIf(Volatile.Read(ref _disposed) != 0, this);

        var subscription = new QmpEventSubscription(_events, capacity);
        _events.Add(subscription);
        return subscription;
    }

    /// <summary>Closes the socket and fails everything pending, then waits for the reader loop to end.</summary>
    public async ValueTask DisposeAsync()
    {
        if (BeginDispose())
        {
            await _readLoop;
        }
    }

    /// <summary>Closes the socket and fails everything pending; the reader loop ends on its own.</summary>
    public void Dispose() => BeginDispose();

    private bool BeginDispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return false;
        }

        Close(new QmpConnectionClosedException("The QMP client was disposed."));
        return true;
    }

    private static async Task<QmpGreeting> ReadGreetingAsync(QmpMessageReader reader, CancellationToken cancellationToken)
    {
        try
        {
            JsonObject message = await reader.ReadAsync(cancellationToken)
                ?? throw new QmpConnectionClosedException("The QMP peer closed the connection before sending its greeting.");
            return QmpMessages.ParseGreeting(message);
        }
        catch (QmpProtocolException ex)
        {
            throw new QmpConnectionClosedException($"The QMP handshake failed: {ex.Message}", ex);
        }
    }

    private async Task SendAsync(byte[] request, CancellationToken cancellationToken)
    {
        await _writeLock.WaitAsync(cancellationToken);
        try
        {
            // Deliberately not cancellable: a half-written request would corrupt the stream for
            // every other caller. Requests are small; a dead peer is handled by closing the socket.
            await _stream.WriteAsync(request, CancellationToken.None);
        }
        catch (Exception ex) when (ex is IOException or SocketException or ObjectDisposedException)
        {
            // The caller's pending entry is failed by Close and observed through its task.
            Close(new QmpConnectionClosedException($"The QMP connection was closed because sending failed: {ex.Message}", ex));
        }
        finally
        {
            _writeLock.Release();
        }
    }

    private async Task ReadLoopAsync()
    {
        QmpConnectionClosedException reason;
        try
        {
            while (true)
            {
                JsonObject? message = await _reader.ReadAsync(CancellationToken.None);
                if (message is null)
                {
                    reason = new QmpConnectionClosedException("The QMP peer closed the connection.");
                    break;
                }

                Dispatch(message);
            }
        }
        catch (QmpProtocolException ex)
        {
            reason = new QmpConnectionClosedException($"The QMP connection was closed after a protocol error: {ex.Message}", ex);
        }
#pragma warning disable CA1031 // Whatever ends the loop must fail the pending calls, or they would hang.
        catch (Exception ex)
#pragma warning restore CA1031
        {
            reason = new QmpConnectionClosedException($"The QMP connection was closed because reading failed: {ex.Message}", ex);
        }

        // A no-op if the client was disposed, which is what made the read fail.
        Close(reason);
    }

    private void Dispatch(JsonObject message)
    {
        if (QmpMessages.IsEvent(message))
        {
            _events.Dispatch(QmpMessages.ParseEvent(message));
        }
        else if (QmpMessages.IsReply(message))
        {
            CompleteCommand(message);
        }
        else
        {
            throw new QmpProtocolException($"The QMP peer sent a message that is neither a reply nor an event: {QmpMessages.Truncate(message.ToJsonString())}");
        }
    }

    private void CompleteCommand(JsonObject reply)
    {
        // QEMU omits the id only when it could not parse a request at all. The caller can then not be
        // identified, and leaving it waiting forever is worse than closing the connection.
        if (!QmpMessages.TryGetId(reply, out long id))
        {
            throw new QmpProtocolException($"The QMP peer sent a reply without a usable id: {QmpMessages.Truncate(reply.ToJsonString())}");
        }

        PendingCommand? pending;
        lock (_lock)
        {
            _pending.TryGetValue(id, out pending);
        }

        // Validated while the command is still registered, so that if this throws, Close fails it.
        // Replies nobody waits for (the caller cancelled) are validated too: a malformed one still
        // means the stream is broken.
        QmpCommandException? error = QmpMessages.GetError(reply, pending?.Command ?? string.Empty);
        lock (_lock)
        {
            if (pending is null || !_pending.Remove(id))
            {
                return;
            }
        }

        if (error is not null)
        {
            pending.Fail(error);
        }
        else
        {
            pending.Complete(QmpMessages.DetachReturn(reply));
        }
    }

    private void Close(QmpConnectionClosedException reason)
    {
        PendingCommand[] pending;
        lock (_lock)
        {
            if (_closed is not null)
            {
                return;
            }

            _closed = reason;
            pending = [.. _pending.Values];
            _pending.Clear();
        }

        foreach (PendingCommand command in pending)
        {
            command.Fail(reason.Clone());
        }

        _events.Close(reason);

        // Unblocks the reader loop and any write in progress.
        _stream.Dispose();
    }
}
