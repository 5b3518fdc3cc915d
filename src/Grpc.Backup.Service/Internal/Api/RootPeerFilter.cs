using Grpc.Backup.Transport;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Connections.Features;
using Microsoft.Extensions.Logging;

namespace Grpc.Backup.Service.Internal.Api;

/// <summary>
/// Kestrel connection middleware for the management socket: closes every connection whose peer (SO_PEERCRED) is not
/// root before a byte of HTTP/2 is read. The socket's 0600 mode already keeps others out; this holds even if an
/// administrator loosens the mode or the directory.
/// </summary>
internal sealed partial class RootPeerFilter(ILogger<RootPeerFilter> logger)
{
    private static readonly PeerCredentialPolicy RootOnly = new([0]);

    public ConnectionDelegate Wrap(ConnectionDelegate next) => async context =>
    {
        var socket = context.Features.Get<IConnectionSocketFeature>()?.Socket;
        UnixPeerCredentials? peer = socket is null ? null : UnixPeerCredentials.FromSocket(socket);
        if (peer is null || !RootOnly.IsAllowed(peer.Value))
        {
            LogRefused(logger, peer?.ProcessId ?? -1, peer?.UserId ?? uint.MaxValue);
            context.Abort(new ConnectionAbortedException("only root may use the management socket"));
            return;
        }
        await next(context);
    };

    [LoggerMessage(Level = LogLevel.Warning, Message = "Refused a management connection from pid {Pid} uid {Uid}: only root is allowed")]
    private static partial void LogRefused(ILogger logger, int pid, uint uid);
}
