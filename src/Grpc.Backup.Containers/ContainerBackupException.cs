namespace Grpc.Backup.Containers;

/// <summary>A container backup could not be made: bad options, a view that could not be built, or tar failing.</summary>
public sealed class ContainerBackupException : Exception
{
    public ContainerBackupException()
    {
    }

    public ContainerBackupException(string message)
        : base(message)
    {
    }

    public ContainerBackupException(string message, Exception innerException)
        : base(message, innerException)
    {
    }
}
