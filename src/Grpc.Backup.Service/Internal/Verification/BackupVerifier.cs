using System.Diagnostics;
using Grpc.Backup.Containers;
using Grpc.Backup.Host;
using Grpc.Backup.Orchestrator;
using Grpc.Backup.Orchestrator.Inventory;
using Grpc.Backup.Protocol.V1;
using Grpc.Backup.Service.Internal.Catalog;
using Grpc.Backup.Service.Internal.Engine;
using Grpc.Backup.Service.Internal.Tasks;
using Grpc.Core;
using Microsoft.Extensions.Logging;

namespace Grpc.Backup.Service.Internal.Verification;

/// <summary>
/// Verifies one backup: restores it through the normal restore runner (so the restore path itself is what is tested)
/// into a scratch directory of its own, compares it with what was recorded at backup time, and always removes the
/// scratch. A VM's volumes are restored as raw files and each hashed against the content_sha256 its provider reported;
/// a container is compared by file manifest (<c>BackupVerifier.Container.cs</c>); <paramref name="guests"/> gives a
/// configured container by id (its id map).
/// </summary>
internal sealed partial class BackupVerifier(CatalogDatabase catalog, string scratchRoot, Func<string, ContainerGuest?> guests,
    ILoggerFactory loggerFactory)
{
    public async Task<VerificationOutcome> VerifyAsync(ServiceTask task, ProviderConnection provider, BackupRecord backup,
        CancellationToken cancellationToken)
    {
        string scratch = Path.Combine(scratchRoot, $"grpc-backupd-verify-{Guid.NewGuid().ToString("N")[..8]}");
        Directory.CreateDirectory(scratch, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        try
        {
            return backup.GuestType == nameof(GuestType.Container)
                ? await VerifyContainerAsync(task, provider, backup, scratch, cancellationToken)
                : await VerifyVmAsync(task, provider, backup, scratch, cancellationToken);
        }
        catch (Exception e) when (!cancellationToken.IsCancellationRequested
            && e is RpcException or BackupException or IOException or InvalidOperationException or UnauthorizedAccessException
                or ContainerRestoreException or ContainerBackupException or InvalidDataException)
        {
            // A backup that cannot be restored has failed verification just as much as one that restores wrong.
            return new VerificationOutcome(VerificationRecord.Failed, $"the restore failed: {JobEngine.Describe(e)}");
        }
        finally
        {
            RemoveScratch(task, backup, scratch);
        }
    }

    private async Task<VerificationOutcome> VerifyVmAsync(ServiceTask task, ProviderConnection provider, BackupRecord backup, string scratch,
        CancellationToken cancellationToken)
    {
        IReadOnlyDictionary<string, string> recorded = catalog.Checksums(backup.Storage, backup.Archive);
        if (recorded.Values.All(sha256 => sha256.Length == 0))
        {
            return new VerificationOutcome(VerificationRecord.NotVerifiable,
                "no content checksum was recorded for any volume (the provider reported none, or the backup was not made by this service)");
        }
        var runner = new VmRestoreRunner(provider, new TaskLogger<VmRestoreRunner>(task, backup.GuestId, loggerFactory.CreateLogger<VmRestoreRunner>()));
        var clock = Stopwatch.StartNew();
        VmRestoreResult restored = await runner.RestoreAsync(backup.Archive, new VmRestoreOptions
        {
            TargetDirectory = Path.Combine(scratch, "vm"),
            TargetFormat = DiskFormat.Raw,
            ExcludedDisks = ExcludedDiskRestore.LeaveOut,
        }, cancellationToken);
        TimeSpan restoring = clock.Elapsed;
        clock.Restart();
        long hashed = 0;
        var matched = new List<string>();
        var withoutChecksum = new List<string>();
        foreach (var (device, expected) in recorded.OrderBy(r => r.Key, StringComparer.Ordinal))
        {
            if (expected.Length == 0)
            {
                withoutChecksum.Add(device);
                continue;
            }
            if (!restored.Disks.TryGetValue(device, out string? path))
            {
                return new VerificationOutcome(VerificationRecord.Failed, $"{device}: recorded at backup time but missing from the restore");
            }
            string actual = await VolumeChecksum.OfFileAsync(path, cancellationToken);
            hashed += new FileInfo(path).Length;
            if (!string.Equals(actual, expected, StringComparison.Ordinal))
            {
                return new VerificationOutcome(VerificationRecord.Failed, $"{device}: restored sha256 {actual} but {expected} was recorded");
            }
            matched.Add(device);
        }
        withoutChecksum.AddRange(restored.Disks.Keys.Where(d => !recorded.ContainsKey(d)).Order(StringComparer.Ordinal));
        task.Log("INFO", backup.GuestId, $"{backup.Archive}: restored in {restoring.TotalSeconds:F1} s, hashed {hashed} bytes in "
            + $"{clock.Elapsed.TotalSeconds:F1} s");
        return new VerificationOutcome(VerificationRecord.Verified, $"sha256 matches for {string.Join(", ", matched)}"
            + (withoutChecksum.Count > 0 ? $"; no checksum recorded for {string.Join(", ", withoutChecksum)}" : ""));
    }

    private static void RemoveScratch(ServiceTask task, BackupRecord backup, string scratch)
    {
        try
        {
            Directory.Delete(scratch, recursive: true);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            task.Log("WARN", backup.GuestId, $"could not remove the verification scratch {scratch}: {e.Message}");
        }
    }
}
