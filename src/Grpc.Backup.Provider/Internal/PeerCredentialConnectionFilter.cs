using Grpc.Backup.Transport;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Connections.Features;
using Microsoft.Extensions.Logging;

namespace Grpc.Backup.Provider.Internal;

/// <summary>
/// Kestrel connection middleware that closes a gRPC connection at once unless the peer's uid (SO_PEERCRED) is
/// allowed. It runs before any HTTP/2 byte is read, so a refused peer learns nothing.
/// </summary>
internal sealed partial class PeerCredentialConnectionFilter(PeerCredentialPolicy policy, ILogger logger)
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
            LogRefused(logger, peer?.ProcessId ?? -1, peer?.UserId ?? uint.MaxValue);
            context.Abort(new ConnectionAbortedException("peer uid not allowed"));
            return;
        }
        await next(context);
    };

    [LoggerMessage(Level = LogLevel.Warning, Message = "Refused a gRPC connection from pid {Pid} uid {Uid}: uid not in the allowed set")]
    private static partial void LogRefused(ILogger logger, int pid, uint uid);
}
