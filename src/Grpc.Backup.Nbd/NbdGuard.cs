using System.Net.Sockets;
using Grpc.Backup.Nbd.Internal;
using Grpc.Backup.Nbd.Internal.Interop;

namespace Grpc.Backup.Nbd;

/// <summary>
/// A host-side NBD server standing between an untrusted client and one export of a trusted upstream server (QEMU's
/// NBD server, qemu-nbd). The guard completes the upstream handshake itself, at once, and serves its clients exactly
/// that export: READ, BLOCK_STATUS and TRIM (rounded inward to <see cref="NbdGuardOptions.DiscardGranularity"/>)
/// within size and in-flight limits; every other option and command is refused with the error the NBD protocol names.
/// </summary>
/// <remarks>
/// Each client connection gets its own upstream connection, negotiated before the client sees anything, so a client
/// that is slow to shake hands cannot make the upstream server's handshake timer drop it. Disposal ends every client
/// connection (shutdown, so copies of the socket held by other processes go dead too) and every upstream one.
/// </remarks>
public sealed class NbdGuard : IAsyncDisposable
{
    private readonly NbdGuardOptions _options;
    private readonly GuardedExport _export;
    private readonly Lock _gate = new();
    private readonly HashSet<NbdGuardSession> _sessions = [];
    private readonly List<Task> _running = [];
    private readonly CancellationTokenSource _disposing = new();
    private GuardUpstream? _spare;
    private Socket? _listener;
    private string? _listenPath;
    private Task? _acceptLoop;
    private bool _disposed;

    private NbdGuard(NbdGuardOptions options, GuardUpstream first)
    {
        _options = options;
        _spare = first;
        _export = new GuardedExport(first.Export, first.Contexts, options);
    }

    /// <summary>The export's name, as clients must ask for it.</summary>
    public string ExportName => _export.Name;

    /// <summary>The export's size in bytes.</summary>
    public long Size => _export.Size;

    /// <summary>Block size constraints the guard advertises.</summary>
    public NbdBlockSizeConstraints BlockSize => new(_export.Minimum, _export.Preferred, _export.Maximum);

    /// <summary>Client connections currently served.</summary>
    public int ActiveConnections
    {
        get
        {
            lock (_gate)
            {
                return _sessions.Count;
            }
        }
    }

    /// <summary>
    /// Bytes reserved by requests in flight over all client connections (a load indicator; each connection stops
    /// reading requests at <see cref="NbdGuardOptions.MaxBytesInFlight"/>).
    /// </summary>
    public long BytesInFlight
    {
        get
        {
            lock (_gate)
            {
                return _sessions.Sum(s => s.BytesInFlight);
            }
        }
    }

    /// <summary>Connects to the upstream export and negotiates it (with the metadata contexts the options name).</summary>
    public static async Task<NbdGuard> StartAsync(NbdGuardOptions options, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(options);
        if (string.IsNullOrEmpty(options.UpstreamSocketPath) == (options.UpstreamConnector is null))
        {
            throw new ArgumentException("Set exactly one of UpstreamSocketPath and UpstreamConnector.", nameof(options));
        }
        ArgumentNullException.ThrowIfNull(options.ExportName, nameof(options));
        if (options.DiscardGranularity < 512 || !int.IsPow2(options.DiscardGranularity))
        {
            throw new ArgumentOutOfRangeException(nameof(options), options.DiscardGranularity, "DiscardGranularity must be a power of two of at least 512.");
        }

        if (options.MinimumBlockSize is { } minimum && (minimum < 1 || !int.IsPow2(minimum) || minimum > Math.Min(options.DiscardGranularity, 64 * 1024)))
        {
            throw new ArgumentOutOfRangeException(nameof(options), minimum, "MinimumBlockSize must be a power of two no larger than DiscardGranularity or 64 KiB.");
        }

        if (options.MaxRequestSize < options.DiscardGranularity || options.MaxRequestSize % options.DiscardGranularity != 0)
        {
            throw new ArgumentOutOfRangeException(nameof(options), options.MaxRequestSize, "MaxRequestSize must be a multiple of DiscardGranularity.");
        }

        if (options.MaxBytesInFlight < options.MaxRequestSize)
        {
            // One request always fits the budget, so a budget below the largest request would not bound what it says.
            throw new ArgumentOutOfRangeException(nameof(options), options.MaxBytesInFlight, "MaxBytesInFlight must be at least MaxRequestSize.");
        }
        var first = await GuardUpstream.ConnectAsync(options, cancellationToken);
        return new NbdGuard(options, first);
    }

    /// <summary>
    /// A new client connection: one end of a connected socket pair, for the caller to pass on (the caller owns it).
    /// The upstream side is already in the transmission phase when this returns.
    /// </summary>
    public async Task<Socket> ConnectAsync(CancellationToken cancellationToken = default)
    {
        var upstream = await TakeUpstreamAsync(cancellationToken);
        Socket guardEnd;
        Socket clientEnd;
        try
        {
            (guardEnd, clientEnd) = Libc.CreateStreamPair();
        }
        catch
        {
            await upstream.DisposeAsync();
            throw;
        }

        if (!TryStartSession(guardEnd, upstream))
        {
            guardEnd.Dispose();
            clientEnd.Dispose();
            await upstream.DisposeAsync();
            throw new ObjectDisposedException(nameof(NbdGuard));
        }

        return clientEnd;
    }

    /// <summary>
    /// Serves clients that connect to a Unix socket at <paramref name="socketPath"/> (created 0600; put it in a
    /// directory only the intended client can reach), at most <paramref name="maxConnections"/> at once.
    /// </summary>
    public void Listen(string socketPath, int maxConnections = 4)
    {
        ArgumentException.ThrowIfNullOrEmpty(socketPath);
        ArgumentOutOfRangeException.ThrowIfLessThan(maxConnections, 1);
        lock (_gate)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            if (_listener is not null)
            {
                throw new InvalidOperationException("The guard already listens.");
            }

            var listener = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
            try
            {
                listener.Bind(new UnixDomainSocketEndPoint(socketPath));
                File.SetUnixFileMode(socketPath, UnixFileMode.UserRead | UnixFileMode.UserWrite);
                listener.Listen(maxConnections);
            }
            catch
            {
                listener.Dispose();
                throw;
            }

            _listener = listener;
            _listenPath = socketPath;
            _acceptLoop = Task.Run(() => AcceptLoopAsync(listener, maxConnections));
        }
    }

    public async ValueTask DisposeAsync()
    {
        Task[] running;
        GuardUpstream? spare;
        lock (_gate)
        {
            if (_disposed)
            {
                return;
            }

            _disposed = true;
            foreach (var session in _sessions)
            {
                session.Stop();
            }

            running = [.. _running];
            spare = _spare;
            _spare = null;
        }

        await _disposing.CancelAsync();
        _listener?.Dispose();
        if (_acceptLoop is not null)
        {
            await _acceptLoop;
        }

        await Task.WhenAll(running);
        if (spare is not null)
        {
            await spare.DisposeAsync();
        }

        if (_listenPath is not null)
        {
            File.Delete(_listenPath);
        }

        _disposing.Dispose();
    }

    private async Task AcceptLoopAsync(Socket listener, int maxConnections)
    {
        while (true)
        {
            Socket client;
            try
            {
                client = await listener.AcceptAsync(_disposing.Token);
            }
            catch (Exception ex) when (ex is SocketException or ObjectDisposedException or OperationCanceledException)
            {
                return;
            }

            try
            {
                if (ActiveConnections >= maxConnections)
                {
                    client.Dispose();
                    continue;
                }

                // The upstream handshake runs now, at the guard's pace, whatever the client does next.
                var upstream = await TakeUpstreamAsync(_disposing.Token);
                if (!TryStartSession(client, upstream))
                {
                    client.Dispose();
                    await upstream.DisposeAsync();
                    return;
                }
            }
            catch (Exception)
            {
                // The upstream server is gone, its connector failed or its handshake was refused, or the guard is stopping:
                // this client gets a closed connection, and the loop goes on (an escaped exception would leave later
                // clients in the backlog, where QEMU's NBD client would wait for a handshake forever).
                client.Dispose();
            }
        }
    }

    private async Task<GuardUpstream> TakeUpstreamAsync(CancellationToken cancellationToken)
    {
        lock (_gate)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            if (_spare is { } spare)
            {
                _spare = null;
                return spare;
            }
        }

        var upstream = await GuardUpstream.ConnectAsync(_options, cancellationToken);
        if (upstream.Export.Size != _export.Size || upstream.Export.BlockSize.Minimum != _export.UpstreamAlignment
            || !upstream.Contexts.SequenceEqual(_export.Contexts))
        {
            // A reconnected upstream (a restarted server) must be the export the clients were told about: the same size,
            // alignment and contexts, or its data cannot be the same data.
            long size = upstream.Export.Size;
            await upstream.DisposeAsync();
            throw new IOException($"the reconnected upstream export has {size} bytes (alignment, contexts) unlike the first's {_export.Size}: refused");
        }
        return upstream;
    }

    private bool TryStartSession(Socket guardEnd, GuardUpstream upstream)
    {
        var session = new NbdGuardSession(guardEnd, upstream, _export, _options);
        lock (_gate)
        {
            if (_disposed)
            {
                // The caller closes both ends; the session (and its semaphores) never ran.
                session.Dispose();
                return false;
            }

            _sessions.Add(session);
            Task run = null!;
            run = Task.Run(async () =>
            {
                await session.RunAsync();
                lock (_gate)
                {
                    _sessions.Remove(session);
                    if (!_disposed)
                    {
                        // ReSharper disable once AccessToModifiedClosure: assigned before the lock is released.
                        _running.Remove(run);
                    }
                }
            });
            _running.Add(run);
        }

        return true;
    }
}
