namespace Grpc.Backup.Cli;

/// <summary>What the exit status of <c>grpc-backup</c> means, so scripts can act on it.</summary>
internal static class ExitCodes
{
    public const int Success = 0;
    public const int Failure = 1;
    public const int Usage = 2;
    /// <summary>The provider answered but cannot be used (protocol major, not ready, unhealthy).</summary>
    public const int ProviderRefused = 3;
    /// <summary>The provider could not be reached.</summary>
    public const int ProviderUnreachable = 4;
    /// <summary>The backup service (grpc-backupd) could not be reached on its socket, or refused this user.</summary>
    public const int ServiceUnreachable = 5;
    /// <summary>The task was cancelled.</summary>
    public const int Cancelled = 6;
    /// <summary>No such job, guest, storage, archive or task.</summary>
    public const int NotFound = 7;
    /// <summary>The job is already running, or (direct mode) another process is backing up the guest.</summary>
    public const int AlreadyRunning = 8;
    /// <summary>Definitions refused (<c>cluster apply</c>): EX_CONFIG, as grpc-backupd's invalid configuration; every error on stderr.</summary>
    public const int InvalidConfiguration = 78;
}
