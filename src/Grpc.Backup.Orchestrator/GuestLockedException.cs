namespace Grpc.Backup.Orchestrator;

/// <summary>Another live process (grpc-backupd or the CLI's direct mode) is backing up this guest: this one is refused.</summary>
public sealed class GuestLockedException : Exception
{
    public GuestLockedException()
    {
    }

    public GuestLockedException(string message) : base(message)
    {
    }

    public GuestLockedException(string message, Exception innerException) : base(message, innerException)
    {
    }
}
