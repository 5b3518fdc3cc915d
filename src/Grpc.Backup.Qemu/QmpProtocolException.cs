namespace Grpc.Backup.Qemu;

/// <summary>
/// The peer sent something that is not valid QMP: malformed JSON, an over-long line, or a message of
/// an unexpected shape. The client never throws this directly; it closes the connection and reports
/// it as the <see cref="Exception.InnerException"/> of a <see cref="QmpConnectionClosedException"/>,
/// because after a framing error nothing else on the stream can be trusted.
/// </summary>
public sealed class QmpProtocolException : QmpException
{
    public QmpProtocolException()
    {
    }

    public QmpProtocolException(string message)
        : base(message)
    {
    }

    public QmpProtocolException(string message, Exception? innerException)
        : base(message, innerException)
    {
    }
}
