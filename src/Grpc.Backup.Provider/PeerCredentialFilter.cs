using Grpc.Backup.Transport;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Connections.Features;
using Microsoft.Extensions.Logging;

namespace Grpc.Backup.Provider;

/// <summary>
/// Kestrel connection middleware that closes a connection at once unless the peer's uid (SO_PEERCRED) is allowed by
/// the policy. It runs before any HTTP/2 byte is read, so a refused peer learns nothing. The one peer filter of the
/// project: every provider's gRPC socket (through <see cref="ProviderHost"/>) and grpc-backupd's root-only management
/// socket use it; a socket's mode (0600/0660) keeps others out first, this holds even if an administrator loosens it.
/// </summary>
public sealed partial class PeerCredentialFilter(PeerCredentialPolicy policy, ILogger logger, string socketName)
{
    private int _refused;

    /// <summary>Connections refused so far.</summary>
    public int RefusedConnections => Volatile.Read(ref _refused);

    public ConnectionDelegate Wrap(ConnectionDelegate next) => async context =>
    {
        var socket = context.Features.Get<IConnectionSocketFeature>()?.Socket;
        UnixPeerCredentials? peer = socket is null ? null : UnixPeerCredentials.FromSocket(socket);
        if (peer is null || !policy.IsAllowed(peer.Value))
        {
            Interlocked.Increment(ref _refused);
            LogRefused(logger, socketName, peer?.ProcessId ?? -1, peer?.UserId ?? uint.MaxValue);
            context.Abort(new ConnectionAbortedException("peer uid not allowed"));
            return;
        }
        await next(context);
    };

    [LoggerMessage(Level = LogLevel.Warning, Message = "Refused a connection to the {Socket} socket from pid {Pid} uid {Uid}: uid not in the allowed set")]
    private static partial void LogRefused(ILogger logger, string socket, int pid, uint uid);
}
