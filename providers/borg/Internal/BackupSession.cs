using Grpc.Backup.Protocol.V1;
using Grpc.Backup.Provider;

namespace Grpc.Backup.Providers.Borg.Internal;

/// <summary>
/// One guest's backup, keyed by backup_id. Phase changes happen under <see cref="Gate"/>; a running BackupVm or
/// BackupContainer can be stopped through <see cref="Abort"/> and awaited through <see cref="Running"/>.
/// </summary>
internal sealed class BackupSession : IBackupDataState
{
    public required string BackupId { get; init; }

    public required string JobId { get; init; }

    public required GuestType GuestType { get; init; }

    public required BorgArchiveName Archive { get; init; }

    public required string GuestName { get; init; }

    public required string Notes { get; init; }

    public string GuestId => Archive.GuestId;

    public Lock Gate { get; } = new();

    public BackupPhase Phase { get; set; }

    public CancellationTokenSource Abort { get; } = new();

    public Task Running { get; set; } = Task.CompletedTask;

    /// <summary>The container mechanism BackupContainerPrepare announced.</summary>
    public ContainerBackupMechanism ContainerMechanism { get; set; }

    /// <summary>What the data call stored: the catalog entry BackupCleanup(success) completes.</summary>
    public CatalogEntry? Stored { get; set; }

    public BackupStats? Stats { get; set; }
}
