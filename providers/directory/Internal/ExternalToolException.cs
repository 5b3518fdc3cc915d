namespace Grpc.Backup.Providers.Directory.Internal;

/// <summary>A QEMU tool failed; the message carries its exit code and what it wrote to stderr.</summary>
internal sealed class ExternalToolException : Exception
{
    public ExternalToolException()
    {
    }

    public ExternalToolException(string message)
        : base(message)
    {
    }

    public ExternalToolException(string message, Exception innerException)
        : base(message, innerException)
    {
    }
}
