namespace Grpc.Backup.Host;

/// <summary>The provider cannot be used: wrong protocol major, not ready in time, unhealthy, or not serving.</summary>
public sealed class ProviderHandshakeException : Exception
{
    public ProviderHandshakeException()
    {
    }

    public ProviderHandshakeException(string message) : base(message)
    {
    }

    public ProviderHandshakeException(string message, Exception innerException) : base(message, innerException)
    {
    }
}
