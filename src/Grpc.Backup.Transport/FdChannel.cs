using System.Net.Sockets;
using System.Runtime.InteropServices;
using Grpc.Backup.Transport.Internal;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Grpc.Backup.Transport;

/// <summary>
/// One connected sideband (SOCK_SEQPACKET) connection. Both directions carry transfers: the
/// host sends backup sources to the provider, the provider sends restore sources back on the
/// channel the host named. Received transfers go into the side's <see cref="FdTransferTable"/>.
/// </summary>
public sealed class FdChannel : IAsyncDisposable
{
    private readonly Socket _socket;
    private readonly FdTransferTable _inbox;
    private readonly ILogger _logger;
    private readonly PacketReceiveLoop _receiveLoop;

    // Connecting side only: completed by the receive thread when HELLO arrives.
    private readonly TaskCompletionSource? _hello;
    private FdToken _channelId;
    private int _disposed;

    private FdChannel(Socket socket, UnixPeerCredentials peer, FdTransferTable inbox, ILogger? logger, FdToken? channelId)
    {
        _socket = socket;
        _inbox = inbox;
        _logger = logger ?? NullLogger.Instance;
        Peer = peer;
        if (channelId is { } id)
        {
            _channelId = id;
        }
        else
        {
            _hello = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        }

        _receiveLoop = new PacketReceiveLoop(socket, OnPacket);
        Completion = CompleteAsync();
    }

    /// <summary>The channel id the listener announced in HELLO.</summary>
    public FdToken ChannelId => _channelId;

    /// <summary>The credentials of the process at the other end.</summary>
    public UnixPeerCredentials Peer { get; }

    /// <summary>
    /// Completes when the connection ends: the peer closed it, a protocol error closed it, or it
    /// was disposed. It never faults; the reason is logged.
    /// </summary>
    public Task Completion { get; }

    /// <summary>
    /// Connects to a provider's sideband socket and waits for its HELLO (bound the wait with
    /// <paramref name="cancellationToken"/>); then receives transfers into <paramref name="inbox"/>.
    /// </summary>
    /// <exception cref="IOException">The connection closed before HELLO (as when the provider refuses
    /// this uid) or the first packet was not a valid HELLO.</exception>
    public static async Task<FdChannel> ConnectAsync(
        string socketPath,
        FdTransferTable inbox,
        ILogger? logger,
        CancellationToken cancellationToken)
    {
        ArgumentException.ThrowIfNullOrEmpty(socketPath);
        ArgumentNullException.ThrowIfNull(inbox);
        var socket = new Socket(AddressFamily.Unix, SocketType.Seqpacket, ProtocolType.Unspecified);
        FdChannel? channel = null;
        try
        {
            await socket.ConnectAsync(new UnixDomainSocketEndPoint(socketPath), cancellationToken);
            channel = new FdChannel(socket, UnixPeerCredentials.FromSocket(socket), inbox, logger, channelId: null);
            channel._receiveLoop.Start();
            try
            {
                await channel._hello!.Task.WaitAsync(cancellationToken);
            }
            catch (IOException e)
            {
                throw new IOException($"Fd sideband {socketPath}: {e.Message}", e);
            }

            Log.Connected(channel._logger, channel.ChannelId, socketPath, channel.Peer.ProcessId, channel.Peer.UserId);
            return channel;
        }
        catch
        {
            if (channel is null)
            {
                socket.Dispose();
            }
            else
            {
                await channel.DisposeAsync();
            }

            throw;
        }
    }

    /// <summary>
    /// Sends one transfer of 1 to 64 fds under a fresh random token, in one packet. Send it
    /// before the RPC that names it, and keep the handles open until that RPC completes.
    /// Thread-safe.
    /// </summary>
    /// <returns>The transfer token to put into the FdRefs.</returns>
    /// <exception cref="ArgumentException">No fds, more than 64, or an invalid handle or kind.</exception>
    /// <exception cref="IOException">The connection is gone.</exception>
    public async Task<FdToken> SendAsync(IReadOnlyList<FdToSend> fds, CancellationToken cancellationToken)
    {
        (FdKind[] kinds, SafeHandle[] handles) = TransferContents.Check(fds);
        ObjectDisposedException.ThrowIf(Volatile.Read(ref _disposed) != 0, this);
        FdToken token = FdToken.NewRandom();
        await PacketSender.SendAsync(_socket, FdPacket.CreateTransfer(token, kinds), handles, cancellationToken);
        return token;
    }

    /// <summary>Closes the connection. Transfers already received stay in the table.</summary>
    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            await Completion;
            return;
        }

        _receiveLoop.Stop();
        await Completion;

        // Only now: the receive thread held a reference on the handle until it ended.
        _socket.Dispose();
    }

    /// <summary>The listener side: a channel for an accepted, allowed connection, with its id chosen.</summary>
    internal static FdChannel CreateAccepted(Socket socket, UnixPeerCredentials peer, FdTransferTable inbox, ILogger? logger) =>
        new(socket, peer, inbox, logger, FdToken.NewRandom());

    /// <summary>The listener side: greets the peer with HELLO, then starts receiving.</summary>
    internal async Task StartAcceptedAsync(CancellationToken cancellationToken)
    {
        try
        {
            await PacketSender.SendAsync(_socket, FdPacket.CreateHello(_channelId), [], cancellationToken);
        }
        finally
        {
            // Also on failure: Completion must be able to complete.
            _receiveLoop.Start();
        }
    }

    private async Task CompleteAsync()
    {
        string reason;
        try
        {
            reason = await _receiveLoop.Completion;
        }
        catch (Exception e)
        {
            Log.ReceiveLoopFailed(_logger, _channelId, e);
            reason = "receive loop failed";
        }

        // After a protocol error (or the peer's close) the connection is dead both ways; tell
        // the peer at once rather than when the owner gets round to disposing.
        _receiveLoop.Stop();
        if (_hello?.TrySetException(new IOException(
            $"the connection closed before HELLO ({reason}); the provider may have refused this uid")) == true)
        {
            // Observed here: nobody awaits it when ConnectAsync was cancelled first.
            _ = _hello.Task.Exception;
        }
        Log.ChannelEnded(_logger, _channelId, reason);
    }

    /// <summary>Runs on the receive thread; owns the packet's fds.</summary>
    private bool OnPacket(ReceivedPacket packet)
    {
        PacketVerdict verdict = PacketClassifier.Classify(packet.Data, packet.MessageFlags, packet.FdCount, packet.Control);
        if (_hello is { Task.IsCompleted: false })
        {
            return OnFirstPacket(packet, verdict);
        }

        switch (verdict.Kind)
        {
            case PacketVerdictKind.Transfer:
                FdToken token = verdict.Token!.Value;
                Log.TransferReceived(_logger, _channelId, token, packet.FdCount);
                _inbox.Add(token, packet.TakeFds(), verdict.Kinds!);
                return true;

            case PacketVerdictKind.Rejected:
                packet.CloseFds();
                Log.TransferRejected(_logger, _channelId, verdict.Token?.ToString() ?? "(no token)", verdict.Reason!, packet.FdCount);
                if (verdict.Token is { } rejected)
                {
                    _inbox.Reject(rejected, verdict.Reason!);
                }

                return true;

            case PacketVerdictKind.Hello:
                packet.CloseFds();
                Log.ProtocolError(_logger, _channelId, "unexpected HELLO", packet.FdCount);
                return false;

            default:
                packet.CloseFds();
                Log.ProtocolError(_logger, _channelId, verdict.Reason!, packet.FdCount);
                return false;
        }
    }

    private bool OnFirstPacket(ReceivedPacket packet, PacketVerdict verdict)
    {
        packet.CloseFds();
        if (verdict.Kind == PacketVerdictKind.Hello)
        {
            _channelId = verdict.Token!.Value;
            _hello!.TrySetResult();
            return true;
        }

        string reason = verdict.Kind switch
        {
            PacketVerdictKind.ProtocolError => verdict.Reason!,
            _ => "a TRANSFER",
        };
        Log.ProtocolError(_logger, _channelId, $"first packet is not a HELLO: {reason}", packet.FdCount);
        _hello!.TrySetException(new IOException($"the first packet is not a HELLO: {reason}"));
        _ = _hello.Task.Exception;
        return false;
    }
}
