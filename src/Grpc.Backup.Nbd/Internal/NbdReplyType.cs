namespace Grpc.Backup.Nbd.Internal;

/// <summary>Structured reply chunk types (NBD_REPLY_TYPE_*).</summary>
internal enum NbdReplyType : ushort
{
    None = 0,
    OffsetData = 1,
    OffsetHole = 2,
    BlockStatus = 5,
    Error = NbdProtocol.ReplyTypeErrorBit | 1,
    ErrorOffset = NbdProtocol.ReplyTypeErrorBit | 2,
}
