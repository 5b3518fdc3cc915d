using Grpc.Backup.Conformance.Internal;
using Grpc.Backup.Protocol;
using Grpc.Backup.Protocol.V1;
using Grpc.Core;

namespace Grpc.Backup.Conformance;

// Repository calls on the scratch guest's real archives: attributes and protection, a dry-run prune, deleting one
// archive of a chain (the others stay restorable), and finally removing everything the suite stored.
public sealed partial class ConformanceSuite
{
    private async Task RunArchiveRepositoryChecksAsync(CancellationToken cancellationToken)
    {
        var repository = Connection.Repository;
        await CheckAsync("repository.attributes-and-protection", async ct =>
        {
            RequireState(_full, "vm.full-backup");
            Expect.Requires(Advertises(RepositoryOperation.UpdateBackupAttributes), "UPDATE_BACKUP_ATTRIBUTES not advertised");
            string archive = _full!.Result.ArchiveName;
            var request = new UpdateBackupAttributesRequest { ArchiveName = archive, Notes = "conformance: protected", Protected = true };
            var updated = await Expect.OkAsync("UpdateBackupAttributes", () => repository.UpdateBackupAttributesAsync(request, cancellationToken: ct));
            try
            {
                Expect.That(updated.Backup is not null, "UpdateBackupAttributes answered without the backup's entry");
                Expect.That(updated.Backup!.Protected && updated.Backup.Notes == request.Notes, $"UpdateBackupAttributes answered {updated.Backup}");
                var repeated = await Expect.OkAsync("UpdateBackupAttributes (repeat)", () => repository.UpdateBackupAttributesAsync(request, cancellationToken: ct));
                Expect.That(updated.Backup.Equals(repeated.Backup), "a repeated UpdateBackupAttributes answered differently");
                if (Advertises(RepositoryOperation.StatBackup))
                {
                    var stat = await Expect.OkAsync("StatBackup", () => repository.StatBackupAsync(new StatBackupRequest { ArchiveName = archive }, cancellationToken: ct));
                    Expect.That(stat.Backup.Protected && stat.Backup.Notes == request.Notes, "StatBackup does not show the notes and protection just set");
                }
                if (Advertises(RepositoryOperation.DeleteBackup))
                {
                    await Expect.StatusAsync("DeleteBackup of a protected backup", () => repository.DeleteBackupAsync(new DeleteBackupRequest { ArchiveName = archive }, cancellationToken: ct),
                        StatusCode.FailedPrecondition, ErrorReason.BackupProtected);
                }
                if (Advertises(RepositoryOperation.PruneBackups))
                {
                    var prune = await Expect.OkAsync("PruneBackups (dry run)", () => repository.PruneBackupsAsync(new PruneBackupsRequest
                    {
                        GuestId = _guestId,
                        DryRun = true,
                        Policy = new RetentionPolicy { KeepLast = 1 },
                    }, cancellationToken: ct));
                    var decision = prune.Decisions.FirstOrDefault(d => d.ArchiveName == archive);
                    Expect.That(decision is { Keep: true }, $"a dry-run prune does not keep the protected backup: {decision?.ToString() ?? "no decision"}");
                }
            }
            finally
            {
                await Expect.OkAsync("UpdateBackupAttributes (unprotect)", () => repository.UpdateBackupAttributesAsync(
                    new UpdateBackupAttributesRequest { ArchiveName = archive, Protected = false }, cancellationToken: CancellationToken.None));
            }
        }, cancellationToken);

        await CheckAsync("repository.prune-dry-run", async ct =>
        {
            RequireState(_incremental, "vm.incremental-backup");
            Expect.Requires(Advertises(RepositoryOperation.PruneBackups), "PRUNE_BACKUPS not advertised");
            var request = new PruneBackupsRequest { GuestId = _guestId, DryRun = true, Policy = new RetentionPolicy { KeepLast = 1 } };
            var prune = await Expect.OkAsync("PruneBackups (dry run, keep-last 1)", () => repository.PruneBackupsAsync(request, cancellationToken: ct));
            var byName = prune.Decisions.ToDictionary(d => d.ArchiveName, StringComparer.Ordinal);
            Expect.That(byName.Count == 2 && byName.ContainsKey(_full!.Result.ArchiveName) && byName.ContainsKey(_incremental!.Result.ArchiveName),
                $"the dry run decided about [{string.Join(", ", byName.Keys)}], expected the scratch guest's two backups");
            Expect.That(byName[_incremental!.Result.ArchiveName].Keep && !byName[_full!.Result.ArchiveName].Keep,
                "keep-last 1 must keep the newest backup and remove the older");
            var again = await Expect.OkAsync("PruneBackups (dry run, repeat)", () => repository.PruneBackupsAsync(request, cancellationToken: ct));
            Expect.That(again.Equals(prune), "a repeated dry run decided differently");
            if (Advertises(RepositoryOperation.ListBackups))
            {
                var listed = await Expect.OkAsync("ListBackups", () => repository.ListBackupsAsync(new ListBackupsRequest { GuestId = _guestId }, cancellationToken: ct));
                Expect.That(listed.Backups.Count == 2, $"after a dry run ListBackups lists {listed.Backups.Count} backup(s), not 2");
            }
        }, cancellationToken);

        await CheckAsync("repository.delete-keeps-others-restorable", async ct =>
        {
            RequireState(_incremental, "vm.incremental-backup");
            Expect.Requires(Advertises(RepositoryOperation.DeleteBackup), "DELETE_BACKUP not advertised");
            // "A provider that keeps incremental chains keeps every other backup restorable."
            await Expect.OkAsync("DeleteBackup of the full backup", () => repository.DeleteBackupAsync(new DeleteBackupRequest { ArchiveName = _full!.Result.ArchiveName }, cancellationToken: ct));
            _archives.Remove(_full!.Result.ArchiveName);
            await Expect.OkAsync("DeleteBackup of the full backup (repeat)", () => repository.DeleteBackupAsync(new DeleteBackupRequest { ArchiveName = _full.Result.ArchiveName }, cancellationToken: ct));
            if (Advertises(RepositoryOperation.StatBackup))
            {
                await Expect.StatusAsync("StatBackup of the deleted backup", () => repository.StatBackupAsync(new StatBackupRequest { ArchiveName = _full.Result.ArchiveName }, cancellationToken: ct),
                    StatusCode.NotFound, ErrorReason.ArchiveNotFound);
            }
            await RestoreAndCompareAsync(_incremental!, "incremental after its full was deleted", ct);
        }, cancellationToken);
    }

    private async Task RunCleanupChecksAsync(CancellationToken cancellationToken)
    {
        if (_connection is null)
        {
            return;
        }
        // Not filtered by --only: what the suite stored is always removed.
        var watch = System.Diagnostics.Stopwatch.StartNew();
        var problems = new List<string>();
        if (_archives.Count > 0 && !Advertises(RepositoryOperation.DeleteBackup))
        {
            problems.Add($"DELETE_BACKUP is not advertised: remove [{string.Join(", ", _archives)}] by hand");
        }
        else
        {
            foreach (string archive in _archives.ToList())
            {
                try
                {
                    await Connection.Repository.DeleteBackupAsync(new DeleteBackupRequest { ArchiveName = archive }, cancellationToken: cancellationToken);
                    _archives.Remove(archive);
                }
                catch (RpcException e) when (e.GetReason() == ErrorReason.BackupProtected && Advertises(RepositoryOperation.UpdateBackupAttributes))
                {
                    // Left protected by a check that failed half-way: unprotect, then delete.
                    problems.Add($"{archive} was still protected at the end");
                    try
                    {
                        await Connection.Repository.UpdateBackupAttributesAsync(new UpdateBackupAttributesRequest { ArchiveName = archive, Protected = false },
                            cancellationToken: cancellationToken);
                        await Connection.Repository.DeleteBackupAsync(new DeleteBackupRequest { ArchiveName = archive }, cancellationToken: cancellationToken);
                        _archives.Remove(archive);
                    }
                    catch (RpcException again)
                    {
                        problems.Add($"DeleteBackup {archive} after unprotecting it: {Expect.Describe(again)}");
                    }
                }
                catch (RpcException e)
                {
                    problems.Add($"DeleteBackup {archive}: {Expect.Describe(e)}");
                }
            }
        }
        if (problems.Count == 0 && Advertises(RepositoryOperation.ListBackups))
        {
            try
            {
                var listed = await Connection.Repository.ListBackupsAsync(new ListBackupsRequest { GuestId = _guestId }, cancellationToken: cancellationToken);
                if (listed.Backups.Count > 0)
                {
                    problems.Add($"after deleting every archive, ListBackups still lists [{string.Join(", ", listed.Backups.Select(b => b.ArchiveName))}]");
                }
            }
            catch (RpcException e)
            {
                problems.Add($"ListBackups: {Expect.Describe(e)}");
            }
        }
        if (Capabilities.VmBackupMechanisms.Count + Capabilities.ContainerBackupMechanisms.Count > 0)
        {
            var request = new JobCleanupRequest { JobId = _jobId, Success = true };
            for (int i = 0; i < 2; i++)
            {
                try
                {
                    await Connection.Backup.JobCleanupAsync(request, cancellationToken: cancellationToken);
                }
                catch (RpcException e)
                {
                    problems.Add($"JobCleanup{(i == 1 ? " (repeat)" : "")}: {Expect.Describe(e)}");
                }
            }
        }
        _results.Add(new CheckResult("cleanup.delete-archives-and-end-job", problems.Count == 0 ? CheckOutcome.Passed : CheckOutcome.Failed,
            string.Join("; ", problems), watch.Elapsed));
    }
}
