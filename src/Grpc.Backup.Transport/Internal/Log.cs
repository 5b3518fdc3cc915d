using Microsoft.Extensions.Logging;

namespace Grpc.Backup.Transport.Internal;

/// <summary>
/// Every log line of the transport. Only tokens, counts, kinds and reasons are logged, never
/// what a passed fd refers to or contains.
/// </summary>
internal static partial class Log
{
    [LoggerMessage(1, LogLevel.Debug, "Sideband {ChannelId}: received transfer {Token} with {Count} fd(s).")]
    public static partial void TransferReceived(ILogger logger, FdToken channelId, FdToken token, int count);

    [LoggerMessage(2, LogLevel.Warning, "Sideband {ChannelId}: rejected transfer {Token} ({Reason}); closed its {Count} fd(s).")]
    public static partial void TransferRejected(ILogger logger, FdToken channelId, string token, string reason, int count);

    [LoggerMessage(3, LogLevel.Warning, "Sideband {ChannelId}: protocol error ({Reason}); closed its {Count} fd(s) and the connection.")]
    public static partial void ProtocolError(ILogger logger, FdToken channelId, string reason, int count);

    [LoggerMessage(4, LogLevel.Debug, "Sideband {ChannelId}: connection ended ({Reason}).")]
    public static partial void ChannelEnded(ILogger logger, FdToken channelId, string reason);

    [LoggerMessage(5, LogLevel.Error, "Sideband {ChannelId}: the receive loop failed.")]
    public static partial void ReceiveLoopFailed(ILogger logger, FdToken channelId, Exception exception);

    [LoggerMessage(6, LogLevel.Warning, "Transfer {Token} reuses a token already seen; rejected it and closed its {Count} fd(s).")]
    public static partial void TokenReused(ILogger logger, FdToken token, int count);

    [LoggerMessage(7, LogLevel.Information, "Transfer {Token} expired unclaimed; closed its {Count} fd(s).")]
    public static partial void TransferExpired(ILogger logger, FdToken token, int count);

    [LoggerMessage(8, LogLevel.Warning, "Sideband {SocketPath}: refused a connection from pid {ProcessId}, uid {UserId}, gid {GroupId}: uid not allowed.")]
    public static partial void PeerRefused(ILogger logger, string? socketPath, int processId, uint userId, uint groupId);

    [LoggerMessage(9, LogLevel.Information, "Sideband {SocketPath}: channel {ChannelId} opened for pid {ProcessId}, uid {UserId}.")]
    public static partial void ChannelAccepted(ILogger logger, string? socketPath, FdToken channelId, int processId, uint userId);

    [LoggerMessage(10, LogLevel.Error, "Sideband {SocketPath}: accepting a connection failed.")]
    public static partial void AcceptFailed(ILogger logger, string? socketPath, Exception exception);

    [LoggerMessage(11, LogLevel.Information, "Sideband {SocketPath}: removed a stale socket file.")]
    public static partial void StaleSocketRemoved(ILogger logger, string socketPath);

    [LoggerMessage(12, LogLevel.Debug, "Sideband {SocketPath}: could not greet a new connection.")]
    public static partial void HelloFailed(ILogger logger, string? socketPath, Exception exception);

    [LoggerMessage(13, LogLevel.Debug, "Sideband {ChannelId}: connected to {SocketPath}, peer pid {ProcessId}, uid {UserId}.")]
    public static partial void Connected(ILogger logger, FdToken channelId, string socketPath, int processId, uint userId);

    [LoggerMessage(14, LogLevel.Warning, "Transfer {Token} would hold more than {Max} unclaimed fds; rejected it and closed its {Count} fd(s).")]
    public static partial void TransferOverLimit(ILogger logger, FdToken token, int count, int max);
}
