using Google.Protobuf.WellKnownTypes;
using Grpc.Backup.Conformance.Internal;
using Grpc.Backup.Protocol;
using Grpc.Backup.Protocol.V1;
using Grpc.Core;

namespace Grpc.Backup.Conformance;

// JobInit, BackupInit and the calls that follow it: idempotency keyed by the ids, and the documented codes for bad
// requests (missing ids, invalid names, unknown ids, a reused id with other arguments).
public sealed partial class ConformanceSuite
{
    // A backup the bad-request and fd checks work on; cleaned up (success=false) when they are done.
    private string? _probeBackupId;

    private GuestType ProbeGuestType => Capabilities.VmBackupMechanisms.Count > 0 ? GuestType.Vm : GuestType.Container;

    private BackupInitRequest ProbeInit(string backupId) => new()
    {
        JobId = _jobId,
        BackupId = backupId,
        GuestId = _guestId,
        GuestType = ProbeGuestType,
        BackupTime = Timestamp.FromDateTime(new DateTime(2026, 1, 2, 3, 4, 5, DateTimeKind.Utc)),
        GuestName = "conformance probe",
    };

    private async Task RunJobChecksAsync(CancellationToken cancellationToken)
    {
        if (_connection is null)
        {
            return;
        }
        var backup = Connection.Backup;
        var jobInit = new JobInitRequest { JobId = _jobId, StartTime = Timestamp.FromDateTime(DateTime.UtcNow) };
        bool jobStarted = false;
        if (Capabilities.VmBackupMechanisms.Count + Capabilities.ContainerBackupMechanisms.Count > 0)
        {
            // Not a check of its own: every backup needs the job, whatever --only selects. A failure shows in the check below.
            try
            {
                await backup.JobInitAsync(jobInit, cancellationToken: cancellationToken);
                jobStarted = true;
            }
            catch (RpcException)
            {
            }
        }
        await CheckAsync("job.init-idempotent", async ct =>
        {
            Expect.Requires(Capabilities.VmBackupMechanisms.Count + Capabilities.ContainerBackupMechanisms.Count > 0, "no backup mechanism advertised");
            await Expect.OkAsync("JobInit", () => backup.JobInitAsync(jobInit, cancellationToken: ct));
            await Expect.OkAsync("JobInit (repeat, same job_id)", () => backup.JobInitAsync(jobInit, cancellationToken: ct));
        }, cancellationToken);

        await CheckAsync("job.init-missing-id", async ct =>
        {
            Expect.Requires(Capabilities.VmBackupMechanisms.Count + Capabilities.ContainerBackupMechanisms.Count > 0, "no backup mechanism advertised");
            await Expect.StatusAsync("JobInit with an empty job_id", () => backup.JobInitAsync(new JobInitRequest(), cancellationToken: ct), StatusCode.InvalidArgument);
        }, cancellationToken);

        await CheckAsync("job.cleanup-unknown", async ct =>
        {
            Expect.Requires(Capabilities.VmBackupMechanisms.Count + Capabilities.ContainerBackupMechanisms.Count > 0, "no backup mechanism advertised");
            // "an unknown job_id is not an error (the call may repeat, or JobInit may never have reached the provider)"
            var request = new JobCleanupRequest { JobId = Guid.NewGuid().ToString(), Success = false, Error = "conformance" };
            await Expect.OkAsync("JobCleanup of an unknown job", () => backup.JobCleanupAsync(request, cancellationToken: ct));
            await Expect.OkAsync("JobCleanup of an unknown job (repeat)", () => backup.JobCleanupAsync(request, cancellationToken: ct));
        }, cancellationToken);

        await CheckAsync("backup.init-idempotent", async ct =>
        {
            RequireState(jobStarted ? "" : null, "job.init-idempotent");
            string backupId = Guid.NewGuid().ToString();
            var first = await Expect.OkAsync("BackupInit", () => backup.BackupInitAsync(ProbeInit(backupId), cancellationToken: ct));
            _probeBackupId = backupId;
            Expect.That(ArchiveName.Check(first.ArchiveName) is null, $"BackupInit returned an invalid archive name '{first.ArchiveName}': {ArchiveName.Check(first.ArchiveName)}");
            var second = await Expect.OkAsync("BackupInit (repeat, same backup_id)", () => backup.BackupInitAsync(ProbeInit(backupId), cancellationToken: ct));
            Expect.That(second.ArchiveName == first.ArchiveName, $"a repeated BackupInit returned '{second.ArchiveName}', the first '{first.ArchiveName}'");
        }, cancellationToken);

        await CheckAsync("backup.init-bad-requests", async ct =>
        {
            RequireState(jobStarted ? "" : null, "job.init-idempotent");
            var noBackupId = ProbeInit("");
            await Expect.StatusAsync("BackupInit without backup_id", () => backup.BackupInitAsync(noBackupId, cancellationToken: ct), StatusCode.InvalidArgument);
            var noJobId = ProbeInit(Guid.NewGuid().ToString());
            noJobId.JobId = "";
            await Expect.StatusAsync("BackupInit without job_id", () => backup.BackupInitAsync(noJobId, cancellationToken: ct), StatusCode.InvalidArgument);
            var traversal = ProbeInit(Guid.NewGuid().ToString());
            traversal.GuestId = "../x";
            await Expect.StatusAsync("BackupInit with guest_id \"../x\"", () => backup.BackupInitAsync(traversal, cancellationToken: ct), StatusCode.InvalidArgument);
            var unspecified = ProbeInit(Guid.NewGuid().ToString());
            unspecified.GuestType = GuestType.Unspecified;
            await Expect.StatusAsync("BackupInit with guest_type UNSPECIFIED", () => backup.BackupInitAsync(unspecified, cancellationToken: ct), StatusCode.InvalidArgument);
        }, cancellationToken);

        await CheckAsync("backup.init-unknown-job", async ct =>
        {
            Expect.Requires(Capabilities.VmBackupMechanisms.Count + Capabilities.ContainerBackupMechanisms.Count > 0, "no backup mechanism advertised");
            var request = ProbeInit(Guid.NewGuid().ToString());
            request.JobId = Guid.NewGuid().ToString();
            await Expect.StatusAsync("BackupInit for a job_id JobInit never saw", () => backup.BackupInitAsync(request, cancellationToken: ct),
                StatusCode.NotFound, ErrorReason.UnknownOperation);
        }, cancellationToken);

        await CheckAsync("backup.init-reused-id", async ct =>
        {
            RequireState(_probeBackupId, "backup.init-idempotent");
            var other = ProbeInit(_probeBackupId!);
            other.GuestId = _guestId + "-other";
            await Expect.StatusAsync("BackupInit reusing a backup_id for another guest", () => backup.BackupInitAsync(other, cancellationToken: ct),
                StatusCode.AlreadyExists);
        }, cancellationToken);

        await CheckAsync("backup.unknown-backup-id", async ct =>
        {
            RequireState(jobStarted ? "" : null, "job.init-idempotent");
            string unknown = Guid.NewGuid().ToString();
            await Expect.StatusAsync("BackupGetMechanism for an unknown backup_id",
                () => backup.BackupGetMechanismAsync(new BackupGetMechanismRequest { BackupId = unknown, GuestType = ProbeGuestType }, cancellationToken: ct),
                StatusCode.NotFound, ErrorReason.UnknownOperation);
            if (ProbeGuestType == GuestType.Vm)
            {
                var query = new BackupVmQueryIncrementalRequest { BackupId = unknown, Volumes = { new VolumeSize { DeviceName = "drive-scsi0", SizeBytes = 1 << 20 } } };
                await Expect.StatusAsync("BackupVmQueryIncremental for an unknown backup_id",
                    () => backup.BackupVmQueryIncrementalAsync(query, cancellationToken: ct), StatusCode.NotFound, ErrorReason.UnknownOperation);
            }
            // "calls for a backup_id it no longer knows ... answers NOT_FOUND with reason UNKNOWN_OPERATION, except for
            // the cleanup calls, which answer OK" (README); backup.proto also lists NOT_FOUND for BackupCleanup.
            var cleanup = new BackupCleanupRequest { JobId = _jobId, BackupId = unknown, Success = false, Error = "conformance" };
            try
            {
                await backup.BackupCleanupAsync(cleanup, cancellationToken: ct);
            }
            catch (RpcException e)
            {
                Expect.Matches("BackupCleanup for an unknown backup_id", e, [StatusCode.NotFound], [ErrorReason.UnknownOperation]);
            }
        }, cancellationToken);

        await CheckAsync("backup.get-mechanism", async ct =>
        {
            RequireState(_probeBackupId, "backup.init-idempotent");
            var request = new BackupGetMechanismRequest { BackupId = _probeBackupId, GuestType = ProbeGuestType };
            var first = await Expect.OkAsync("BackupGetMechanism", () => backup.BackupGetMechanismAsync(request, cancellationToken: ct));
            if (ProbeGuestType == GuestType.Vm)
            {
                Expect.That(first.MechanismCase == BackupGetMechanismResponse.MechanismOneofCase.Vm && Capabilities.VmBackupMechanisms.Contains(first.Vm),
                    $"BackupGetMechanism chose {first}, not one of the advertised VM mechanisms");
            }
            else
            {
                Expect.That(first.MechanismCase == BackupGetMechanismResponse.MechanismOneofCase.Container && Capabilities.ContainerBackupMechanisms.Contains(first.Container),
                    $"BackupGetMechanism chose {first}, not one of the advertised container mechanisms");
            }
            var second = await Expect.OkAsync("BackupGetMechanism (repeat)", () => backup.BackupGetMechanismAsync(request, cancellationToken: ct));
            Expect.That(second.Equals(first), $"a repeated BackupGetMechanism answered {second}, the first {first}");
        }, cancellationToken);

        await CheckAsync("backup.query-incremental", async ct =>
        {
            RequireState(_probeBackupId, "backup.init-idempotent");
            Expect.Requires(ProbeGuestType == GuestType.Vm, "no VM backup mechanism advertised");
            var request = new BackupVmQueryIncrementalRequest
            {
                BackupId = _probeBackupId,
                Volumes = { new VolumeSize { DeviceName = "drive-scsi0", SizeBytes = 32L << 20 }, new VolumeSize { DeviceName = "drive-scsi1", SizeBytes = 8L << 20 } },
            };
            var first = await Expect.OkAsync("BackupVmQueryIncremental", () => backup.BackupVmQueryIncrementalAsync(request, cancellationToken: ct));
            foreach (var choice in first.Choices)
            {
                Expect.That(choice.DeviceName is "drive-scsi0" or "drive-scsi1", $"a choice names device '{choice.DeviceName}', which was not asked about");
                Expect.That(choice.Choice_ != IncrementalChoice.Unspecified && System.Enum.IsDefined(choice.Choice_), $"{choice.DeviceName}: choice {choice.Choice_}");
                Expect.That(Capabilities.IncrementalVmBackup || choice.Choice_ == IncrementalChoice.None,
                    $"{choice.DeviceName}: answered {choice.Choice_} without advertising incremental_vm_backup (must answer NONE)");
            }
            var second = await Expect.OkAsync("BackupVmQueryIncremental (repeat)", () => backup.BackupVmQueryIncrementalAsync(request, cancellationToken: ct));
            Expect.That(second.Equals(first), "a repeated BackupVmQueryIncremental answered differently");
            var traversal = new BackupVmQueryIncrementalRequest { BackupId = _probeBackupId, Volumes = { new VolumeSize { DeviceName = "../x", SizeBytes = 1 << 20 } } };
            await Expect.StatusAsync("BackupVmQueryIncremental with device \"../x\"",
                () => backup.BackupVmQueryIncrementalAsync(traversal, cancellationToken: ct), StatusCode.InvalidArgument);
        }, cancellationToken);
    }

    /// <summary>Ends the probe backup as a failed one; BackupCleanup(success=false) must be repeatable.</summary>
    private async Task FinishProbeBackupAsync(CancellationToken cancellationToken)
    {
        await CheckAsync("backup.cleanup-failure-idempotent", async ct =>
        {
            RequireState(_probeBackupId, "backup.init-idempotent");
            var request = new BackupCleanupRequest { JobId = _jobId, BackupId = _probeBackupId, Success = false, Error = "conformance probe" };
            await Expect.OkAsync("BackupCleanup(success=false)", () => Connection.Backup.BackupCleanupAsync(request, cancellationToken: ct));
            try
            {
                await Connection.Backup.BackupCleanupAsync(request, cancellationToken: ct);
            }
            catch (RpcException e)
            {
                Expect.Matches("BackupCleanup(success=false) (repeat)", e, [StatusCode.NotFound], [ErrorReason.UnknownOperation]);
            }
            if (Advertises(RepositoryOperation.ListBackups))
            {
                var listed = await Expect.OkAsync("ListBackups", () => Connection.Repository.ListBackupsAsync(new ListBackupsRequest { GuestId = _guestId }, cancellationToken: ct));
                Expect.That(listed.Backups.Count == 0, $"ListBackups lists {listed.Backups.Count} backup(s) of a backup that was cleaned up as failed");
            }
        }, cancellationToken);
    }
}
