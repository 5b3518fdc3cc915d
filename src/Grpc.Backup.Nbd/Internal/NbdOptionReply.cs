namespace Grpc.Backup.Nbd.Internal;

/// <summary>Non-error option reply types (NBD_REP_*); errors are <see cref="NbdOptionError"/>.</summary>
internal enum NbdOptionReply : uint
{
    Ack = 1,
    Server = 2,
    Info = 3,
    MetaContext = 4,
}
