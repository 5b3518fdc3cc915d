namespace Grpc.Backup.Conformance.Internal;

/// <summary>The check does not apply (not advertised) or cannot run (a check it depends on did not pass).</summary>
internal sealed class CheckSkippedException : Exception
{
    public CheckSkippedException()
    {
    }

    public CheckSkippedException(string message) : base(message)
    {
    }

    public CheckSkippedException(string message, Exception innerException) : base(message, innerException)
    {
    }
}
