namespace Grpc.Backup.Nbd.Internal;

/// <summary>One option reply read during the handshake: its type and (bounded) payload.</summary>
internal readonly record struct NbdOptionReplyMessage(uint Type, byte[] Data)
{
    public bool IsError => (Type & NbdProtocol.OptionReplyErrorBit) != 0;
}
