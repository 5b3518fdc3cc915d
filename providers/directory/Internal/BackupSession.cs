using Grpc.Backup.Protocol.V1;
using Grpc.Backup.Provider;

namespace Grpc.Backup.Providers.Directory.Internal;

/// <summary>
/// The in-memory state of one guest's backup, keyed by backup_id. Phase changes happen under <see cref="Gate"/>; the
/// running BackupVm can be stopped through <see cref="Abort"/> and awaited through <see cref="Running"/>, so
/// BackupCleanup never removes files a copy is still writing.
/// </summary>
internal sealed class BackupSession : IBackupDataState
{
    public required string BackupId { get; init; }

    public required string JobId { get; init; }

    public required string GuestId { get; init; }

    public required GuestType GuestType { get; init; }

    public required ArchiveRef Archive { get; init; }

    public Lock Gate { get; } = new();

    public BackupPhase Phase { get; set; }

    /// <summary>Cancelled by BackupCleanup(failure) or JobCleanup to stop a BackupVm still running.</summary>
    public CancellationTokenSource Abort { get; } = new();

    /// <summary>The BackupVm in progress, or the last one; completes when it has released everything.</summary>
    public Task Running { get; set; } = Task.CompletedTask;

    /// <summary>The volumes BackupVm stored, for the manifest.</summary>
    public List<ManifestVolume> Volumes { get; } = [];

    /// <summary>The stats BackupCleanup(success) returned, so a repeat returns the same.</summary>
    public BackupStats? Stats { get; set; }
}
