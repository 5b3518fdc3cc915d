namespace Grpc.Backup.Qemu;

/// <summary>
/// The QMP connection is gone: the peer closed it, QEMU died, the client was disposed, or the
/// client tore it down after a protocol violation (then <see cref="Exception.InnerException"/> is a
/// <see cref="QmpProtocolException"/>). Every pending and later call fails with this exception.
/// </summary>
public sealed class QmpConnectionClosedException : IOException
{
    public QmpConnectionClosedException()
        : base("The QMP connection is closed.")
    {
    }

    public QmpConnectionClosedException(string message)
        : base(message)
    {
    }

    public QmpConnectionClosedException(string message, Exception? innerException)
        : base(message, innerException)
    {
    }

    // Each awaiting caller gets its own instance: rethrowing one shared instance from many
    // tasks would interleave their stack traces.
    internal QmpConnectionClosedException Clone() => new(Message, InnerException);
}
