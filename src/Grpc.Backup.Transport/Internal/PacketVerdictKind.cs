namespace Grpc.Backup.Transport.Internal;

/// <summary>What the receiving rules make of one packet.</summary>
internal enum PacketVerdictKind
{
    /// <summary>A well-formed HELLO; whether one is welcome is the channel's business.</summary>
    Hello,

    /// <summary>A well-formed TRANSFER: its fds go to the table.</summary>
    Transfer,

    /// <summary>A TRANSFER that breaks a receiving rule: close its fds, remember its token.</summary>
    Rejected,

    /// <summary>Not a packet of this protocol: close its fds and the connection.</summary>
    ProtocolError,
}
