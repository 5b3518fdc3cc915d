namespace Grpc.Backup.Containers;

/// <summary>A container restore failed for a reason other than the archive being refused (see <see cref="TarArchiveRejectedException"/>).</summary>
public sealed class ContainerRestoreException : Exception
{
    public ContainerRestoreException()
    {
    }

    public ContainerRestoreException(string message)
        : base(message)
    {
    }

    public ContainerRestoreException(string message, Exception innerException)
        : base(message, innerException)
    {
    }
}
