namespace Grpc.Backup.Orchestrator;

/// <summary>A backup or restore failed for a reason the host detected (a provider broke the contract, a check failed).</summary>
public sealed class BackupException : Exception
{
    public BackupException()
    {
    }

    public BackupException(string message) : base(message)
    {
    }

    public BackupException(string message, Exception innerException) : base(message, innerException)
    {
    }
}
