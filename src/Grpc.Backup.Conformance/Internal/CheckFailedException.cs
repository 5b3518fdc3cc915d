namespace Grpc.Backup.Conformance.Internal;

/// <summary>The provider broke the contract; the message says how.</summary>
internal sealed class CheckFailedException : Exception
{
    public CheckFailedException()
    {
    }

    public CheckFailedException(string message) : base(message)
    {
    }

    public CheckFailedException(string message, Exception innerException) : base(message, innerException)
    {
    }
}
