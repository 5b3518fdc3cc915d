namespace Grpc.Backup.Provider;

/// <summary>The part of a provider's per-backup state that <see cref="BackupDataCall"/> guards.</summary>
public interface IBackupDataState
{
    string BackupId { get; }

    /// <summary>Held for every change of <see cref="Phase"/>.</summary>
    Lock Gate { get; }

    BackupPhase Phase { get; set; }

    /// <summary>Cancelled by BackupCleanup(failure) or JobCleanup to stop a data call still running.</summary>
    CancellationTokenSource Abort { get; }

    /// <summary>The data call in progress, or the last one; completes when it has released everything.</summary>
    Task Running { get; set; }
}
