namespace Grpc.Backup.Provider;

/// <summary>Where one guest's backup is in its lifecycle (protos/README.md "Lifecycle of a backup job").</summary>
public enum BackupPhase
{
    /// <summary>BackupInit named the archive; no data yet.</summary>
    Initialized,

    /// <summary>BackupVm is running.</summary>
    Running,

    /// <summary>BackupVm stored every volume; BackupCleanup(success) may finish the archive.</summary>
    DataStored,

    /// <summary>BackupVm failed or was cancelled; only BackupCleanup(failure) makes sense now.</summary>
    DataFailed,

    /// <summary>BackupCleanup(success) made the archive complete.</summary>
    Completed,

    /// <summary>BackupCleanup(failure) removed the archive.</summary>
    Discarded,
}
