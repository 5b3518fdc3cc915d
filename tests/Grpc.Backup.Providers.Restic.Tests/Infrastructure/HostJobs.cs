using Google.Protobuf.WellKnownTypes;
using Grpc.Backup.Host;
using Grpc.Backup.Orchestrator;
using Grpc.Backup.Protocol;
using Grpc.Backup.Protocol.V1;
using Grpc.Backup.Tests.Infrastructure;
using Microsoft.Extensions.Logging.Abstractions;

namespace Grpc.Backup.Providers.Restic.Tests.Infrastructure;

/// <summary>What a host does around one guest: a job with one VM backup, or a whole VM restore.</summary>
internal static class HostJobs
{
    public static async Task<VmBackupResult> BackupAsync(ProviderConnection connection, DemoGuestProcess guest, TempDirectory work)
    {
        Directory.CreateDirectory(work.File("fleece"));
        Directory.CreateDirectory(work.File("run"));
        string jobId = Guid.NewGuid().ToString();
        await connection.Backup.JobInitAsync(new JobInitRequest { JobId = jobId, StartTime = Timestamp.FromDateTime(DateTime.UtcNow) });
        try
        {
            return await new VmBackupRunner(connection, NullLogger<VmBackupRunner>.Instance).BackupAsync(jobId, guest.Guest,
                new VmBackupOptions
                {
                    FleecingDirectory = work.File("fleece"),
                    RuntimeDirectory = work.File("run"),
                    StorageId = "test",
                    // The demo guest's agent hashes its whole disks to record the instant; on a loaded machine that
                    // outlasts the default 10 s, the host falls back to a crash-consistent switch and the recorded
                    // instant no longer matches the snapshot.
                    AgentTimeout = TimeSpan.FromSeconds(60),
                },
                CancellationToken.None);
        }
        finally
        {
            await connection.Backup.JobCleanupAsync(new JobCleanupRequest { JobId = jobId, Success = true });
        }
    }


    /// <summary>
    /// Restores the archive and asserts every disk's sha256 and the guest configuration; with <paramref name="reported"/>,
    /// also that the backup reported each disk's chunk digest and streamed its chunk list, both equal to the restore's.
    /// </summary>
    public static async Task AssertRestoresToAsync(ProviderConnection connection, string archive,
        IReadOnlyDictionary<string, string> expected, byte[] guestConfig, string target, VmBackupResult? reported = null)
    {
        var restored = await new VmRestoreRunner(connection, NullLogger<VmRestoreRunner>.Instance)
            .RestoreAsync(archive, new VmRestoreOptions { TargetDirectory = target }, CancellationToken.None);
        foreach (var (device, sha) in expected)
        {
            Assert.Equal(sha, Checksums.Sha256File(restored.Disks[device]));
            if (reported is not null)
            {
                ChunkDigestList actual = await ChunkDigestList.OfFileAsync(restored.Disks[device], CancellationToken.None);
                VolumeDigest digest = reported.Volumes.Single(v => v.DeviceName == device).Digest;
                Assert.NotNull(digest);
                Assert.Equal(ChunkDigestList.Algorithm, digest.Algorithm);
                Assert.Equal(actual.Value, digest.Value);
                Assert.Equal(actual.Digests.ToArray(), reported.ChunkDigests[device].Digests.ToArray());
            }
        }
        Assert.Equal(guestConfig, restored.GuestConfig.ToArray());
        Directory.Delete(target, recursive: true);
    }
}
