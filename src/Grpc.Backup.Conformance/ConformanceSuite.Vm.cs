using System.Security.Cryptography;
using Grpc.Backup.Conformance.Internal;
using Grpc.Backup.Orchestrator;
using Grpc.Backup.Protocol;
using Grpc.Backup.Protocol.V1;
using Grpc.Core;
using Microsoft.Extensions.Logging.Abstractions;

namespace Grpc.Backup.Conformance;

// The VM round trip on the scratch guest through the orchestrator's own runners (real snapshot access: fleecing,
// copy-before-write, NBD exports, dirty bitmaps): a full, a backup cancelled mid-stream, an incremental, each
// restore compared by sha256 with the disks at the backup's instant; then the repository calls on the archives.
public sealed partial class ConformanceSuite
{
    private ScratchGuest? _guest;
    private BackedUpInstant? _full;
    private BackedUpInstant? _incremental;

    private sealed record BackedUpInstant(string BackupId, VmBackupResult Result, IReadOnlyDictionary<string, string> Expected);

    private async Task RunVmRoundTripAsync(CancellationToken cancellationToken)
    {
        if (_connection is null)
        {
            return;
        }
        try
        {
            await CheckAsync("vm.full-backup", async ct =>
            {
                Expect.Requires(Capabilities.VmBackupMechanisms.Count > 0, "no VM backup mechanism advertised");
                _guest = await ScratchGuest.StartAsync(PrivateDirectory("guest"), _guestId, ct);
                _full = await BackUpAsync(0, ct);
                foreach (VolumeCompleted volume in _full.Result.Volumes)
                {
                    Expect.That(volume.BitmapMode is BitmapMode.New or BitmapMode.None, $"{volume.DeviceName}: the first backup was stored as {volume.BitmapMode}");
                }
            }, cancellationToken);

            await CheckAsync("vm.backup-cleanup-idempotent", async ct =>
            {
                RequireState(_full, "vm.full-backup");
                var again = await Expect.OkAsync("BackupCleanup(success=true) (repeat)", () => Connection.Backup.BackupCleanupAsync(
                    new BackupCleanupRequest { JobId = _jobId, BackupId = _full!.BackupId, Success = true }, cancellationToken: ct));
                Expect.That(again.Stats.Equals(_full!.Result.Stats), $"a repeated BackupCleanup returned {again.Stats}, the first {_full.Result.Stats}");
                ulong restored = (ulong)_guest!.DeviceNames.Sum(_guest.SizeOf);
                Expect.That(again.Stats.RestoredSizeBytes == restored, $"stats.restored_size_bytes is {again.Stats.RestoredSizeBytes}; a full restore produces {restored}");
            }, cancellationToken);

            await CheckAsync("vm.listed", async ct =>
            {
                RequireState(_full, "vm.full-backup");
                Expect.Requires(Advertises(RepositoryOperation.ListBackups) || Advertises(RepositoryOperation.StatBackup), "neither LIST_BACKUPS nor STAT_BACKUP advertised");
                if (Advertises(RepositoryOperation.ListBackups))
                {
                    var listed = await Expect.OkAsync("ListBackups", () => Connection.Repository.ListBackupsAsync(new ListBackupsRequest { GuestId = _guestId }, cancellationToken: ct));
                    Expect.That(listed.Backups.Count == 1 && listed.Backups[0].ArchiveName == _full!.Result.ArchiveName,
                        $"ListBackups of the scratch guest lists [{string.Join(", ", listed.Backups.Select(b => b.ArchiveName))}], expected [{_full!.Result.ArchiveName}]");
                    CheckEntry(listed.Backups[0], "ListBackups");
                }
                if (Advertises(RepositoryOperation.StatBackup))
                {
                    var stat = await Expect.OkAsync("StatBackup", () => Connection.Repository.StatBackupAsync(new StatBackupRequest { ArchiveName = _full!.Result.ArchiveName }, cancellationToken: ct));
                    CheckEntry(stat.Backup, "StatBackup");
                }
            }, cancellationToken);

            await CheckAsync("vm.restore-full", async ct =>
            {
                RequireState(_full, "vm.full-backup");
                await RestoreAndCompareAsync(_full!, "full", ct);
            }, cancellationToken);

            await CheckAsync("vm.restore-calls-idempotent", async ct =>
            {
                RequireState(_full, "vm.full-backup");
                Expect.Requires(Capabilities.VmRestoreMechanisms.Count > 0, "no VM restore mechanism advertised");
                await RestoreCallsIdempotentAsync(_full!.Result.ArchiveName, ct);
            }, cancellationToken);

            await CheckAsync("vm.cancel-mid-stream", async ct =>
            {
                RequireState(_full, "vm.full-backup");
                await CancelMidStreamAsync(ct);
            }, cancellationToken);

            await CheckAsync("vm.incremental-backup", async ct =>
            {
                RequireState(_full, "vm.full-backup");
                // Writes after the instant of the full (and of the cancelled backup), one of them into a former hole.
                _guest!.WriteRandom("drive-scsi0", (3L << 20) + (512 << 10), 64 << 10);
                _guest.WriteRandom("drive-scsi0", 16L << 20, 1 << 20);
                _guest.WriteRandom("drive-scsi1", 6L << 20, 4096);
                _incremental = await BackUpAsync(1, ct);
                if (Capabilities.IncrementalVmBackup)
                {
                    Expect.That(_incremental.Result.Volumes.Any(v => v.BitmapMode == BitmapMode.Reuse),
                        $"the provider advertises incremental_vm_backup, yet the second backup stored [{string.Join(", ", _incremental.Result.Volumes.Select(v => $"{v.DeviceName}: {v.BitmapMode}"))}]");
                    foreach (VolumeCompleted volume in _incremental.Result.Volumes.Where(v => v.BitmapMode == BitmapMode.Reuse))
                    {
                        Expect.That(volume.BytesRead < (ulong)_guest.SizeOf(volume.DeviceName) / 2,
                            $"{volume.DeviceName}: the incremental read {volume.BytesRead} bytes of a {_guest.SizeOf(volume.DeviceName)}-byte disk with a few writes");
                    }
                }
            }, cancellationToken);

            await CheckAsync("vm.restore-incremental", async ct =>
            {
                RequireState(_incremental, "vm.incremental-backup");
                await RestoreAndCompareAsync(_incremental!, "incremental", ct);
                // The incremental must not have changed what the full restores to.
                await RestoreAndCompareAsync(_full!, "full after the incremental", ct);
            }, cancellationToken);

            await RunArchiveRepositoryChecksAsync(cancellationToken);
        }
        finally
        {
            if (_guest is not null)
            {
                await _guest.DisposeAsync();
            }
        }
    }

    private async Task<BackedUpInstant> BackUpAsync(int index, CancellationToken cancellationToken)
    {
        IReadOnlyDictionary<string, string> expected = _guest!.Checksums();
        IReadOnlyDictionary<string, ChunkDigestList> expectedChunks = _guest.ChunkDigests();
        string backupId = Guid.NewGuid().ToString();
        VmBackupResult result = await new VmBackupRunner(Connection, NullLogger<VmBackupRunner>.Instance).BackupAsync(_jobId, _guest.Guest, VmOptions(backupId, 0, null),
            cancellationToken);
        _archives.Add(result.ArchiveName);
        Expect.That(result.Volumes.Select(v => v.DeviceName).Order(StringComparer.Ordinal).SequenceEqual(expected.Keys.Order(StringComparer.Ordinal)),
            $"backup {index}: VolumeCompleted for [{string.Join(", ", result.Volumes.Select(v => v.DeviceName))}], expected one for each of [{string.Join(", ", expected.Keys)}]");
        foreach (VolumeCompleted volume in result.Volumes.Where(v => v.ContentSha256.Length > 0))
        {
            Expect.That(volume.ContentSha256 == expected[volume.DeviceName],
                $"backup {index}, {volume.DeviceName}: VolumeCompleted.content_sha256 {volume.ContentSha256} differs from the disk at the instant ({expected[volume.DeviceName]})");
        }
        // The runner already refused a digest of another algorithm or a chunk list that does not combine to it.
        foreach (VolumeCompleted volume in result.Volumes.Where(v => v.Digest is not null))
        {
            ChunkDigestList instant = expectedChunks[volume.DeviceName];
            long? bad = result.ChunkDigests.TryGetValue(volume.DeviceName, out ChunkDigestList? streamed) ? streamed.FirstDifference(instant) : null;
            Expect.That(volume.Digest.Value == instant.Value && bad is null,
                $"backup {index}, {volume.DeviceName}: VolumeCompleted.digest {volume.Digest.Value} differs from the disk at the instant ({instant.Value})"
                + (bad is { } offset ? $"; the streamed chunk list first differs at offset {offset}" : ""));
        }
        return new BackedUpInstant(backupId, result, expected);
    }

    private VmBackupOptions VmOptions(string backupId, ulong bandwidthLimit, IProgress<Progress>? progress) => new()
    {
        FleecingDirectory = PrivateDirectory($"fleece-{backupId[..8]}"),
        RuntimeDirectory = PrivateDirectory($"run-{backupId[..8]}"),
        StorageId = "conformance",
        BackupId = backupId,
        BandwidthLimit = bandwidthLimit,
        Progress = progress,
    };

    private async Task RestoreAndCompareAsync(BackedUpInstant backup, string what, CancellationToken cancellationToken)
    {
        Expect.Requires(Capabilities.VmRestoreMechanisms.Count > 0, "no VM restore mechanism advertised");
        string target = Path.Combine(PrivateDirectory($"restore-{Guid.NewGuid().ToString("N")[..8]}"), "vm");
        VmRestoreResult restored = await new VmRestoreRunner(Connection, NullLogger<VmRestoreRunner>.Instance)
            .RestoreAsync(backup.Result.ArchiveName, new VmRestoreOptions { TargetDirectory = target }, cancellationToken);
        try
        {
            foreach (var (device, expected) in backup.Expected)
            {
                Expect.That(restored.Disks.TryGetValue(device, out string? path), $"{what}: the restore has no {device}");
                string actual;
                await using (FileStream stream = File.OpenRead(path!))
                {
                    actual = Convert.ToHexStringLower(await SHA256.HashDataAsync(stream, cancellationToken));
                }
                Expect.That(actual == expected, $"{what}: restored {device} has sha256 {actual}, the disk at the backup's instant {expected}");
            }
            Expect.That(restored.GuestConfig.Span.SequenceEqual(_guest!.Guest.RawConfig.Span), $"{what}: the restored guest config is not byte-exact");
            Expect.That(restored.FirewallConfig is null, $"{what}: a firewall config came back for a backup that had none");
        }
        finally
        {
            Directory.Delete(Path.GetDirectoryName(target)!, recursive: true);
        }
    }

    private async Task RestoreCallsIdempotentAsync(string archive, CancellationToken cancellationToken)
    {
        var restore = Connection.Restore;
        var mechanism = await Expect.OkAsync("RestoreGetMechanism", () => restore.RestoreGetMechanismAsync(new RestoreGetMechanismRequest { ArchiveName = archive }, cancellationToken: cancellationToken));
        Expect.That(mechanism.GuestType == GuestType.Vm && mechanism.MechanismCase == RestoreGetMechanismResponse.MechanismOneofCase.Vm
            && Capabilities.VmRestoreMechanisms.Contains(mechanism.Vm), $"RestoreGetMechanism of a VM archive answered {mechanism}");
        var again = await Expect.OkAsync("RestoreGetMechanism (repeat)", () => restore.RestoreGetMechanismAsync(new RestoreGetMechanismRequest { ArchiveName = archive }, cancellationToken: cancellationToken));
        Expect.That(again.Equals(mechanism), "a repeated RestoreGetMechanism answered differently");
        var firewall = await Expect.OkAsync("ArchiveGetFirewallConfig", () => restore.ArchiveGetFirewallConfigAsync(new ArchiveGetFirewallConfigRequest { ArchiveName = archive }, cancellationToken: cancellationToken));
        Expect.That(!firewall.Present, "ArchiveGetFirewallConfig reports a firewall config for a backup without one (must answer present=false)");

        string restoreId = Guid.NewGuid().ToString();
        var request = new RestoreVmInitRequest { RestoreId = restoreId, ArchiveName = archive };
        try
        {
            var first = await Expect.OkAsync("RestoreVmInit", () => restore.RestoreVmInitAsync(request, cancellationToken: cancellationToken));
            var expected = _guest!.DeviceNames.Select(d => (d, (ulong)_guest.SizeOf(d))).Order().ToList();
            var actual = first.Volumes.Select(v => (v.DeviceName, v.SizeBytes)).Order().ToList();
            Expect.That(actual.SequenceEqual(expected), $"RestoreVmInit lists [{string.Join(", ", actual)}], the backup had [{string.Join(", ", expected)}]");
            var second = await Expect.OkAsync("RestoreVmInit (repeat, same restore_id)", () => restore.RestoreVmInitAsync(request, cancellationToken: cancellationToken));
            Expect.That(second.Equals(first), "a repeated RestoreVmInit answered differently");
            await Expect.StatusAsync("RestoreVmVolumeInit of a device the archive does not have", () => restore.RestoreVmVolumeInitAsync(new RestoreVmVolumeInitRequest
            {
                RestoreId = restoreId,
                ArchiveName = archive,
                DeviceName = "drive-none9",
            }, cancellationToken: cancellationToken), StatusCode.InvalidArgument);
            await Expect.StatusAsync("RestoreVmVolumeInit before RestoreVmInit", () => restore.RestoreVmVolumeInitAsync(new RestoreVmVolumeInitRequest
            {
                RestoreId = Guid.NewGuid().ToString(),
                ArchiveName = archive,
                DeviceName = "drive-scsi0",
            }, cancellationToken: cancellationToken), StatusCode.NotFound, ErrorReason.UnknownOperation);
        }
        finally
        {
            for (int i = 0; i < 2; i++)
            {
                await Expect.OkAsync("RestoreVmCleanup", () => restore.RestoreVmCleanupAsync(new RestoreVmCleanupRequest { RestoreId = restoreId, ArchiveName = archive },
                    cancellationToken: CancellationToken.None));
            }
        }
    }

    /// <summary>
    /// Cancels a running BackupVm (the host-enforced limit keeps it running): the provider must stop, list nothing
    /// for it, stay ready, and the next backup (vm.incremental-backup) must still be exact.
    /// </summary>
    private async Task CancelMidStreamAsync(CancellationToken cancellationToken)
    {
        // Enough new data that the dirty-bitmap backup takes seconds at 2 MiB/s.
        for (long mib = 8; mib < 16; mib++)
        {
            _guest!.WriteRandom("drive-scsi0", mib << 20, 1 << 20);
        }
        int listedBefore = Advertises(RepositoryOperation.ListBackups)
            ? (await Connection.Repository.ListBackupsAsync(new ListBackupsRequest { GuestId = _guestId }, cancellationToken: cancellationToken)).Backups.Count
            : 0;
        using var cancel = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        var streaming = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var progress = new Progress<Progress>(_ => streaming.TrySetResult());
        string backupId = Guid.NewGuid().ToString();
        Task<VmBackupResult> running = new VmBackupRunner(Connection, NullLogger<VmBackupRunner>.Instance)
            .BackupAsync(_jobId, _guest!.Guest, VmOptions(backupId, 2 << 20, progress), cancel.Token);
        await Task.WhenAny(streaming.Task, Task.Delay(TimeSpan.FromSeconds(3), cancellationToken), running);
        Expect.That(!running.IsCompletedSuccessfully, "the backup finished before it could be cancelled");
        await cancel.CancelAsync();
        try
        {
            VmBackupResult finished = await running;
            _archives.Add(finished.ArchiveName);
            throw new CheckFailedException("BackupVm ended with OK after the host cancelled it");
        }
        catch (Exception e) when (e is OperationCanceledException || e is RpcException { StatusCode: StatusCode.Cancelled })
        {
        }
        catch (RpcException e)
        {
            throw new CheckFailedException($"the cancelled backup failed with {Expect.Describe(e)} instead of CANCELLED", e);
        }
        if (Advertises(RepositoryOperation.ListBackups))
        {
            var listed = await Expect.OkAsync("ListBackups", () => Connection.Repository.ListBackupsAsync(new ListBackupsRequest { GuestId = _guestId }, cancellationToken: cancellationToken));
            Expect.That(listed.Backups.Count == listedBefore, $"ListBackups lists {listed.Backups.Count} backup(s) after a cancelled one, {listedBefore} before");
        }
        if (Advertises(RepositoryOperation.UpdateBackupAttributes))
        {
            // A provider that left the cancelled work running may still hold its repository.
            await Expect.OkAsync("UpdateBackupAttributes after the cancelled backup", () => Connection.Repository.UpdateBackupAttributesAsync(
                new UpdateBackupAttributesRequest { ArchiveName = _full!.Result.ArchiveName, Notes = "conformance: after a cancelled backup" },
                cancellationToken: cancellationToken));
        }
        var probe = await Expect.OkAsync("Probe", () => Connection.Identity.ProbeAsync(new ProbeRequest(), cancellationToken: cancellationToken));
        Expect.That(probe.State == ProbeResponse.Types.State.Ready, $"Probe answers {probe.State} after a cancelled backup");
    }

    private void CheckEntry(BackupEntry entry, string call)
    {
        Expect.That(entry.ArchiveName == _full!.Result.ArchiveName, $"{call}: archive_name '{entry.ArchiveName}', expected '{_full.Result.ArchiveName}'");
        Expect.That(entry.GuestId == _guestId, $"{call}: guest_id '{entry.GuestId}', expected '{_guestId}'");
        Expect.That(entry.GuestType == GuestType.Vm, $"{call}: guest_type {entry.GuestType}");
        Expect.That(!entry.Incremental, $"{call}: the full backup is marked incremental");
        ulong restored = (ulong)_guest!.DeviceNames.Sum(_guest.SizeOf);
        Expect.That(entry.RestoredSizeBytes == restored, $"{call}: restored_size_bytes {entry.RestoredSizeBytes}, a full restore produces {restored}");
    }
}
