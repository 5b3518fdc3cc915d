using Grpc.Backup.Conformance.Internal;
using Grpc.Backup.Protocol.V1;
using Grpc.Core;

namespace Grpc.Backup.Conformance;

// Restore and repository calls on archives that do not exist or cannot exist: the documented NOT_FOUND with
// ARCHIVE_NOT_FOUND, OK where the contract makes the call idempotent (cleanups, delete), and never OK for a name
// like "../x".
public sealed partial class ConformanceSuite
{
    private string MissingArchive => $"{_guestId}/missing";

    private bool RestoresAnything => Capabilities.VmRestoreMechanisms.Count + Capabilities.ContainerRestoreMechanisms.Count > 0;

    private async Task RunRestoreErrorChecksAsync(CancellationToken cancellationToken)
    {
        if (_connection is null)
        {
            return;
        }
        var restore = Connection.Restore;
        await CheckAsync("restore.unknown-archive", async ct =>
        {
            Expect.Requires(RestoresAnything, "no restore mechanism advertised");
            await Expect.StatusAsync("RestoreGetMechanism of a missing archive",
                () => restore.RestoreGetMechanismAsync(new RestoreGetMechanismRequest { ArchiveName = MissingArchive }, cancellationToken: ct),
                StatusCode.NotFound, ErrorReason.ArchiveNotFound);
            await Expect.StatusAsync("ArchiveGetGuestConfig of a missing archive",
                () => restore.ArchiveGetGuestConfigAsync(new ArchiveGetGuestConfigRequest { ArchiveName = MissingArchive }, cancellationToken: ct),
                StatusCode.NotFound, ErrorReason.ArchiveNotFound);
            await Expect.StatusAsync("ArchiveGetFirewallConfig of a missing archive",
                () => restore.ArchiveGetFirewallConfigAsync(new ArchiveGetFirewallConfigRequest { ArchiveName = MissingArchive }, cancellationToken: ct),
                StatusCode.NotFound, ErrorReason.ArchiveNotFound);
            if (Capabilities.VmRestoreMechanisms.Count > 0)
            {
                await Expect.StatusAsync("RestoreVmInit of a missing archive",
                    () => restore.RestoreVmInitAsync(new RestoreVmInitRequest { RestoreId = Guid.NewGuid().ToString(), ArchiveName = MissingArchive }, cancellationToken: ct),
                    StatusCode.NotFound, ErrorReason.ArchiveNotFound);
            }
            if (Capabilities.ContainerRestoreMechanisms.Count > 0)
            {
                await Expect.StatusAsync("RestoreContainerInit of a missing archive",
                    () => restore.RestoreContainerInitAsync(new RestoreContainerInitRequest { RestoreId = Guid.NewGuid().ToString(), ArchiveName = MissingArchive }, cancellationToken: ct),
                    StatusCode.NotFound, ErrorReason.ArchiveNotFound);
            }
        }, cancellationToken);

        await CheckAsync("restore.invalid-archive-name", async ct =>
        {
            Expect.Requires(RestoresAnything, "no restore mechanism advertised");
            foreach (string name in (string[])["../x", "/etc/passwd", "", "a//b"])
            {
                await Expect.StatusAsync($"RestoreGetMechanism of \"{name}\"",
                    () => restore.RestoreGetMechanismAsync(new RestoreGetMechanismRequest { ArchiveName = name }, cancellationToken: ct),
                    [StatusCode.InvalidArgument, StatusCode.NotFound]);
                await Expect.StatusAsync($"ArchiveGetGuestConfig of \"{name}\"",
                    () => restore.ArchiveGetGuestConfigAsync(new ArchiveGetGuestConfigRequest { ArchiveName = name }, cancellationToken: ct),
                    [StatusCode.InvalidArgument, StatusCode.NotFound]);
            }
        }, cancellationToken);

        await CheckAsync("restore.cleanup-unknown", async ct =>
        {
            Expect.Requires(RestoresAnything, "no restore mechanism advertised");
            string restoreId = Guid.NewGuid().ToString();
            // "Idempotent: yes; an unknown device or restore is not an error."
            for (int i = 0; i < 2; i++)
            {
                if (Capabilities.VmRestoreMechanisms.Count > 0)
                {
                    await Expect.OkAsync("RestoreVmVolumeCleanup of an unknown restore", () => restore.RestoreVmVolumeCleanupAsync(
                        new RestoreVmVolumeCleanupRequest { RestoreId = restoreId, ArchiveName = MissingArchive, DeviceName = "drive-scsi0" }, cancellationToken: ct));
                    await Expect.OkAsync("RestoreVmCleanup of an unknown restore", () => restore.RestoreVmCleanupAsync(
                        new RestoreVmCleanupRequest { RestoreId = restoreId, ArchiveName = MissingArchive }, cancellationToken: ct));
                }
                if (Capabilities.ContainerRestoreMechanisms.Count > 0)
                {
                    await Expect.OkAsync("RestoreContainerCleanup of an unknown restore", () => restore.RestoreContainerCleanupAsync(
                        new RestoreContainerCleanupRequest { RestoreId = restoreId, ArchiveName = MissingArchive }, cancellationToken: ct));
                }
            }
        }, cancellationToken);
    }

    private async Task RunRepositoryErrorChecksAsync(CancellationToken cancellationToken)
    {
        if (_connection is null)
        {
            return;
        }
        var repository = Connection.Repository;
        await CheckAsync("repository.list", async ct =>
        {
            Expect.Requires(Advertises(RepositoryOperation.ListBackups), "LIST_BACKUPS not advertised");
            var listed = await Expect.OkAsync("ListBackups of the scratch guest", () => repository.ListBackupsAsync(new ListBackupsRequest { GuestId = _guestId }, cancellationToken: ct));
            Expect.That(listed.Backups.Count == 0, $"ListBackups lists {listed.Backups.Count} backup(s) of a guest id that never had a complete backup");
            await Expect.OkAsync("ListBackups of every guest", () => repository.ListBackupsAsync(new ListBackupsRequest { MaxEntries = 5 }, cancellationToken: ct));
            await Expect.StatusAsync("ListBackups with a page_token it never issued",
                () => repository.ListBackupsAsync(new ListBackupsRequest { PageToken = "not-a-token-of-yours" }, cancellationToken: ct), StatusCode.InvalidArgument);
        }, cancellationToken);

        await CheckAsync("repository.stat-unknown", async ct =>
        {
            Expect.Requires(Advertises(RepositoryOperation.StatBackup), "STAT_BACKUP not advertised");
            await Expect.StatusAsync("StatBackup of a missing archive",
                () => repository.StatBackupAsync(new StatBackupRequest { ArchiveName = MissingArchive }, cancellationToken: ct), StatusCode.NotFound, ErrorReason.ArchiveNotFound);
        }, cancellationToken);

        await CheckAsync("repository.delete-missing", async ct =>
        {
            Expect.Requires(Advertises(RepositoryOperation.DeleteBackup), "DELETE_BACKUP not advertised");
            // "deleting a backup that does not exist answers OK"
            await Expect.OkAsync("DeleteBackup of a missing archive", () => repository.DeleteBackupAsync(new DeleteBackupRequest { ArchiveName = MissingArchive }, cancellationToken: ct));
            await Expect.OkAsync("DeleteBackup of a missing archive (repeat)", () => repository.DeleteBackupAsync(new DeleteBackupRequest { ArchiveName = MissingArchive }, cancellationToken: ct));
        }, cancellationToken);

        await CheckAsync("repository.update-unknown", async ct =>
        {
            Expect.Requires(Advertises(RepositoryOperation.UpdateBackupAttributes), "UPDATE_BACKUP_ATTRIBUTES not advertised");
            await Expect.StatusAsync("UpdateBackupAttributes of a missing archive",
                () => repository.UpdateBackupAttributesAsync(new UpdateBackupAttributesRequest { ArchiveName = MissingArchive, Notes = "x" }, cancellationToken: ct),
                StatusCode.NotFound, ErrorReason.ArchiveNotFound);
        }, cancellationToken);

        await CheckAsync("repository.capacity", async ct =>
        {
            Expect.Requires(Advertises(RepositoryOperation.GetCapacity), "GET_CAPACITY not advertised");
            var capacity = await Expect.OkAsync("GetCapacity", () => repository.GetCapacityAsync(new GetCapacityRequest(), cancellationToken: ct));
            Expect.That(capacity.TotalBytes > 0, "GetCapacity reports total_bytes 0");
            Expect.That(capacity.AvailableBytes <= capacity.TotalBytes && capacity.UsedBytes <= capacity.TotalBytes,
                $"GetCapacity: used {capacity.UsedBytes} or available {capacity.AvailableBytes} exceeds total {capacity.TotalBytes}");
        }, cancellationToken);

        await CheckAsync("repository.prune-empty", async ct =>
        {
            Expect.Requires(Advertises(RepositoryOperation.PruneBackups), "PRUNE_BACKUPS not advertised");
            var decisions = await Expect.OkAsync("PruneBackups (dry run) of a guest without backups", () => repository.PruneBackupsAsync(
                new PruneBackupsRequest { GuestId = _guestId, DryRun = true, Policy = new RetentionPolicy { KeepLast = 1 } }, cancellationToken: ct));
            Expect.That(decisions.Decisions.Count == 0, $"PruneBackups decided about {decisions.Decisions.Count} archive(s) of a guest without backups");
        }, cancellationToken);
    }
}
