namespace Grpc.Backup.Provider;

/// <summary>
/// A provider's command line or environment is wrong (a missing or malformed option). <see cref="ProviderHost.RunAsync"/>
/// reports it on one line with a pointer to <c>--help</c> and exits 2.
/// </summary>
public sealed class ProviderOptionsException : InvalidOperationException
{
    public ProviderOptionsException(string message)
        : base(message)
    {
    }

    public ProviderOptionsException(string message, Exception innerException)
        : base(message, innerException)
    {
    }

    public ProviderOptionsException()
    {
    }
}
