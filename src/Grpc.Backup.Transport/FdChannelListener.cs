using System.Collections.Concurrent;
using System.Diagnostics.CodeAnalysis;
using System.Net.Sockets;
using Grpc.Backup.Transport.Internal;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Grpc.Backup.Transport;

/// <summary>
/// The provider side of the sideband: listens on <c>PATH.fds</c>, checks every connecting
/// peer's uid, greets allowed peers with HELLO and a fresh channel id, and receives their
/// transfers into the side's <see cref="FdTransferTable"/>.
/// </summary>
public sealed class FdChannelListener : IAsyncDisposable
{
    private const int Backlog = 16;

    private readonly Socket _listenSocket;
    private readonly PeerCredentialPolicy _policy;
    private readonly FdTransferTable _inbox;
    private readonly ILogger _logger;
    private readonly UnixListeningSocket? _boundSocket;
    private readonly ConcurrentDictionary<FdToken, FdChannel> _channels = new();
    private readonly CancellationTokenSource _stopping = new();
    private readonly Lock _lifecycle = new();
    private readonly Task _acceptLoop;
    private int _refusedConnections;
    private bool _disposed;

    private FdChannelListener(
        Socket listenSocket,
        string? socketPath,
        UnixListeningSocket? boundSocket,
        PeerCredentialPolicy policy,
        FdTransferTable inbox,
        ILogger? logger)
    {
        _listenSocket = listenSocket;
        SocketPath = socketPath;
        _boundSocket = boundSocket;
        _policy = policy;
        _inbox = inbox;
        _logger = logger ?? NullLogger.Instance;
        _acceptLoop = Task.Run(AcceptLoopAsync);
    }

    /// <summary>How many connections were refused by the peer credential policy.</summary>
    public int RefusedConnections => Volatile.Read(ref _refusedConnections);

    /// <summary>The socket's path, when known.</summary>
    public string? SocketPath { get; }

    /// <summary>
    /// Binds a new SOCK_SEQPACKET socket at <paramref name="socketPath"/> with file mode
    /// <paramref name="mode"/> (set before listen, so the socket is never reachable with a wider
    /// mode), listens and accepts. A stale socket file is removed; any other existing file, or a
    /// socket somebody listens on, is an error.
    /// </summary>
    /// <exception cref="IOException">The path is taken.</exception>
    public static FdChannelListener Bind(
        string socketPath,
        UnixFileMode mode,
        PeerCredentialPolicy policy,
        FdTransferTable inbox,
        ILogger? logger)
    {
        ArgumentException.ThrowIfNullOrEmpty(socketPath);
        ArgumentNullException.ThrowIfNull(policy);
        ArgumentNullException.ThrowIfNull(inbox);
        var bound = UnixListeningSocket.Bind(socketPath, SocketType.Seqpacket, mode, logger);
        return new FdChannelListener(bound.Socket, socketPath, bound, policy, inbox, logger);
    }

    /// <summary>
    /// Serves an already listening SOCK_SEQPACKET socket, such as one passed by systemd socket
    /// activation (<c>ListenSequentialPacket=</c>). The listener owns it from now on; the socket
    /// file belongs to whoever bound it and is left alone.
    /// </summary>
    /// <exception cref="ArgumentException">The socket is not a SOCK_SEQPACKET Unix socket.</exception>
    public static FdChannelListener FromListeningSocket(
        Socket listeningSeqpacketSocket,
        PeerCredentialPolicy policy,
        FdTransferTable inbox,
        ILogger? logger)
    {
        ArgumentNullException.ThrowIfNull(listeningSeqpacketSocket);
        ArgumentNullException.ThrowIfNull(policy);
        ArgumentNullException.ThrowIfNull(inbox);
        if (listeningSeqpacketSocket.AddressFamily != AddressFamily.Unix
            || listeningSeqpacketSocket.SocketType != SocketType.Seqpacket)
        {
            throw new ArgumentException("The socket is not a SOCK_SEQPACKET Unix socket.", nameof(listeningSeqpacketSocket));
        }

        string? path = (listeningSeqpacketSocket.LocalEndPoint as UnixDomainSocketEndPoint)?.ToString();
        return new FdChannelListener(listeningSeqpacketSocket, string.IsNullOrEmpty(path) ? null : path, null, policy, inbox, logger);
    }

    /// <summary>The open channel with this id, to send restore fds back on the channel the host named.</summary>
    public bool TryGetChannel(FdToken channelId, [NotNullWhen(true)] out FdChannel? channel) =>
        _channels.TryGetValue(channelId, out channel);

    /// <summary>Stops accepting, closes every channel and removes the socket file this listener created.</summary>
    public async ValueTask DisposeAsync()
    {
        lock (_lifecycle)
        {
            if (_disposed)
            {
                return;
            }

            _disposed = true;
        }

        await _stopping.CancelAsync();
        _listenSocket.Dispose();
        await _acceptLoop;
        foreach (FdChannel channel in _channels.Values)
        {
            await channel.DisposeAsync();
        }

        _channels.Clear();

        // Normally gone already: .NET unlinks the path of a socket it bound when disposing it.
        // A fallback that removes the file only if it is still the one we bound.
        _boundSocket?.DeleteFileIfOurs();
        _stopping.Dispose();
    }

    private async Task AcceptLoopAsync()
    {
        while (!_stopping.IsCancellationRequested)
        {
            Socket accepted;
            try
            {
                accepted = await _listenSocket.AcceptAsync(_stopping.Token);
            }
            catch (Exception) when (_stopping.IsCancellationRequested)
            {
                return;
            }
            catch (SocketException e)
            {
                // EMFILE and the like: transient. Back off instead of spinning.
                Log.AcceptFailed(_logger, SocketPath, e);
                try
                {
                    await Task.Delay(TimeSpan.FromMilliseconds(100), _stopping.Token);
                }
                catch (OperationCanceledException)
                {
                    return;
                }

                continue;
            }

            await ServeAsync(accepted);
        }
    }

    private async Task ServeAsync(Socket accepted)
    {
        UnixPeerCredentials peer;
        try
        {
            peer = UnixPeerCredentials.FromSocket(accepted);
        }
        catch (SocketException e)
        {
            Log.AcceptFailed(_logger, SocketPath, e);
            accepted.Dispose();
            return;
        }

        if (!_policy.IsAllowed(peer))
        {
            // Closed at once, before HELLO: the peer sees end-of-stream and nothing else.
            Interlocked.Increment(ref _refusedConnections);
            Log.PeerRefused(_logger, SocketPath, peer.ProcessId, peer.UserId, peer.GroupId);
            accepted.Dispose();
            return;
        }

        FdChannel channel = FdChannel.CreateAccepted(accepted, peer, _inbox, _logger);
        bool registered;
        lock (_lifecycle)
        {
            // Registered before HELLO goes out: the host can name the id as soon as it has it.
            registered = !_disposed && _channels.TryAdd(channel.ChannelId, channel);
        }

        if (!registered)
        {
            await channel.DisposeAsync();
            return;
        }

        _ = RemoveWhenClosedAsync(channel);
        try
        {
            await channel.StartAcceptedAsync(_stopping.Token);
            Log.ChannelAccepted(_logger, SocketPath, channel.ChannelId, peer.ProcessId, peer.UserId);
        }
        catch (Exception e) when (e is IOException or OperationCanceledException or ObjectDisposedException)
        {
            // The peer left before HELLO, or we are stopping; the channel ends by itself.
            Log.HelloFailed(_logger, SocketPath, e);
            await channel.DisposeAsync();
        }
    }

    private async Task RemoveWhenClosedAsync(FdChannel channel)
    {
        await channel.Completion;
        _channels.TryRemove(new KeyValuePair<FdToken, FdChannel>(channel.ChannelId, channel));
        await channel.DisposeAsync();
    }
}
