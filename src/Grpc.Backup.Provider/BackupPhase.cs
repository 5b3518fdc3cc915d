namespace Grpc.Backup.Providers.Directory.Internal;

/// <summary>Where one guest's backup is in its lifecycle (protos/README.md "Lifecycle of a backup job").</summary>
internal enum BackupPhase
{
    /// <summary>BackupInit created the archive directory; no data yet.</summary>
    Initialized,

    /// <summary>BackupVm is running.</summary>
    Running,

    /// <summary>BackupVm stored every volume; BackupCleanup(success) may finish the archive.</summary>
    DataStored,

    /// <summary>BackupVm failed or was cancelled; only BackupCleanup(failure) makes sense now.</summary>
    DataFailed,

    /// <summary>BackupCleanup(success) marked the archive complete.</summary>
    Completed,

    /// <summary>BackupCleanup(failure) removed the archive.</summary>
    Discarded,
}
