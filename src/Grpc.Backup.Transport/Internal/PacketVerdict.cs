namespace Grpc.Backup.Transport.Internal;

/// <summary>The outcome of <see cref="PacketClassifier.Classify"/>.</summary>
/// <param name="Kind">What to do with the packet.</param>
/// <param name="Token">The channel id (HELLO) or transfer token; null when the packet does not carry a usable one.</param>
/// <param name="Kinds">The declared fd kinds of an accepted transfer.</param>
/// <param name="Reason">Why a packet was rejected or is a protocol error.</param>
internal sealed record PacketVerdict(PacketVerdictKind Kind, FdToken? Token, FdKind[]? Kinds, string? Reason)
{
    public static PacketVerdict Hello(FdToken channelId) => new(PacketVerdictKind.Hello, channelId, null, null);

    public static PacketVerdict Transfer(FdToken token, FdKind[] kinds) => new(PacketVerdictKind.Transfer, token, kinds, null);

    public static PacketVerdict Rejected(FdToken? token, string reason) => new(PacketVerdictKind.Rejected, token, null, reason);

    public static PacketVerdict ProtocolError(string reason) => new(PacketVerdictKind.ProtocolError, null, null, reason);
}
