namespace Grpc.Backup.Qemu;

/// <summary>Base type for errors reported by QEMU or detected in its QMP traffic.</summary>
public class QmpException : Exception
{
    public QmpException()
    {
    }

    public QmpException(string message)
        : base(message)
    {
    }

    public QmpException(string message, Exception? innerException)
        : base(message, innerException)
    {
    }
}
