using System.Diagnostics;
using Grpc.Backup.Containers;
using Grpc.Backup.Host;
using Grpc.Backup.Orchestrator;
using Grpc.Backup.Orchestrator.Inventory;
using Grpc.Backup.Protocol;
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
/// scratch. A VM's volumes are restored as raw files and each compared with the chunk list its provider reported
/// (naming the first differing chunk's offset), or with the digest or older content_sha256 when that is all there is;
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
        IReadOnlyDictionary<string, RecordedDigest> digests = catalog.Digests(backup.Storage, backup.Archive);
        IReadOnlyDictionary<string, string> checksums = catalog.Checksums(backup.Storage, backup.Archive);
        // Per device what was recorded: a digest (chunk lists, from newer providers) wins over a content_sha256.
        var recorded = new SortedDictionary<string, (RecordedDigest? Digest, string Sha256)>(StringComparer.Ordinal);
        foreach (var (device, sha256) in checksums)
        {
            recorded[device] = (null, sha256);
        }
        foreach (var (device, digest) in digests)
        {
            recorded[device] = (digest, "");
        }
        if (recorded.Values.All(r => r.Digest is null && r.Sha256.Length == 0))
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
        foreach (var (device, (digest, sha256)) in recorded)
        {
            if (digest is null && sha256.Length == 0)
            {
                withoutChecksum.Add(device);
                continue;
            }
            if (!restored.Disks.TryGetValue(device, out string? path))
            {
                return new VerificationOutcome(VerificationRecord.Failed, $"{device}: recorded at backup time but missing from the restore");
            }
            hashed += new FileInfo(path).Length;
            string? mismatch = digest is null
                ? await CompareSha256Async(device, path, sha256, cancellationToken)
                : await CompareDigestAsync(device, path, digest, cancellationToken);
            if (mismatch is not null)
            {
                return new VerificationOutcome(VerificationRecord.Failed, mismatch);
            }
            matched.Add(device);
        }
        withoutChecksum.AddRange(restored.Disks.Keys.Where(d => !recorded.ContainsKey(d)).Order(StringComparer.Ordinal));
        task.Log("INFO", backup.GuestId, $"{backup.Archive}: restored in {restoring.TotalSeconds:F1} s, hashed {hashed} bytes in "
            + $"{clock.Elapsed.TotalSeconds:F1} s");
        return new VerificationOutcome(VerificationRecord.Verified, $"{(digests.Count > 0 ? "digest" : "sha256")} matches for {string.Join(", ", matched)}"
            + (withoutChecksum.Count > 0 ? $"; no checksum recorded for {string.Join(", ", withoutChecksum)}" : ""));
    }

    /// <summary>A backup made before chunk digests: the whole restored image against its content_sha256.</summary>
    private static async Task<string?> CompareSha256Async(string device, string path, string expected, CancellationToken cancellationToken)
    {
        string actual = await VolumeChecksum.OfFileAsync(path, cancellationToken);
        return string.Equals(actual, expected, StringComparison.Ordinal) ? null : $"{device}: restored sha256 {actual} but {expected} was recorded";
    }

    /// <summary>The restored image's chunk list against the recorded one, naming the first chunk that differs.</summary>
    private static async Task<string?> CompareDigestAsync(string device, string path, RecordedDigest expected, CancellationToken cancellationToken)
    {
        ChunkDigestList actual = await ChunkDigestList.OfFileAsync(path, cancellationToken);
        if (expected.Chunks is { } chunks)
        {
            if (chunks.VolumeSize != actual.VolumeSize)
            {
                return $"{device}: restored {actual.VolumeSize} bytes but {chunks.VolumeSize} were recorded";
            }
            if (actual.FirstDifference(chunks) is { } offset)
            {
                int index = (int)(offset / ChunkDigestList.ChunkSize);
                return $"{device}: the chunk at offset {offset} ({actual.LengthOf(index)} bytes, chunk {index} of {actual.ChunkCount}) differs "
                    + $"from the one recorded: restored sha256 {Convert.ToHexStringLower(actual[index])}, recorded {Convert.ToHexStringLower(chunks[index])}";
            }
        }
        string value = actual.Value;
        return string.Equals(value, expected.Value, StringComparison.Ordinal)
            ? null
            : $"{device}: restored digest {value} but {expected.Value} was recorded (no chunk list was recorded to name the chunk)";
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
