namespace Grpc.Backup.Service.Internal.Engine;

/// <summary>A hook script failed or timed out.</summary>
internal sealed class HookException : Exception
{
    public HookException()
    {
    }

    public HookException(string message) : base(message)
    {
    }

    public HookException(string message, Exception innerException) : base(message, innerException)
    {
    }
}
