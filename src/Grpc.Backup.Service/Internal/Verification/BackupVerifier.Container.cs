using Grpc.Backup.Containers;
using Grpc.Backup.Host;
using Grpc.Backup.Orchestrator;
using Grpc.Backup.Service.Internal.Catalog;
using Grpc.Backup.Service.Internal.Tasks;
using Microsoft.Extensions.Logging;

namespace Grpc.Backup.Service.Internal.Verification;

/// <summary>
/// Containers: the archive is restored into the scratch directory inside a user namespace with the guest's id map
/// (the normal restore path, validating every member), then the restored tree's manifest is computed the same way as
/// at backup time (as the container's root, by tar in that namespace) and compared with the recorded one.
/// </summary>
internal sealed partial class BackupVerifier
{
    private async Task<VerificationOutcome> VerifyContainerAsync(ServiceTask task, ProviderConnection provider, BackupRecord backup, string scratch,
        CancellationToken cancellationToken)
    {
        if (catalog.ContainerManifest(backup.Storage, backup.Archive) is not { } manifestPath || !File.Exists(manifestPath))
        {
            return new VerificationOutcome(VerificationRecord.NotVerifiable,
                "no file manifest was recorded for this container backup (file-manifest: no, or not made by this service)");
        }
        if (guests(backup.GuestId) is not { } guest)
        {
            return new VerificationOutcome(VerificationRecord.NotVerifiable,
                $"guest {backup.GuestId} is not a configured container any more: the id map to restore it with is unknown");
        }
        if (guest.IsPrivileged)
        {
            return new VerificationOutcome(VerificationRecord.NotVerifiable,
                $"container {guest.GuestId} is privileged: a provider's archive is never extracted as host root");
        }
        FileManifest expected = await FileManifest.LoadAsync(manifestPath, cancellationToken);
        // Root's alone, as every restored rootfs's parent: host users must not reach the restored setuid files. The
        // container's root reaches the tree through a bind in its own mount namespace (extraction and the walk below).
        File.SetUnixFileMode(scratch, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        string rootfs = Path.Combine(scratch, "rootfs");
        var runner = new ContainerRestoreRunner(provider,
            new TaskLogger<ContainerRestoreRunner>(task, backup.GuestId, loggerFactory.CreateLogger<ContainerRestoreRunner>()));
        var clock = System.Diagnostics.Stopwatch.StartNew();
        await runner.RestoreAsync(backup.Archive, new ContainerRestoreRunOptions
        {
            IdMap = guest.IdMap,
            TargetRootFileSystem = rootfs,
            ConfigDirectory = Path.Combine(scratch, "config"),
        }, cancellationToken);
        TimeSpan restoring = clock.Elapsed;
        clock.Restart();
        FileManifest actual;
        await using (UserNamespace userNamespace = await UserNamespace.CreateAsync(guest.IdMap, cancellationToken))
        {
            actual = await FileManifest.ComputeAsync(userNamespace, await userNamespace.BindOverParentAsync(rootfs, cancellationToken), [], cancellationToken);
        }
        task.Log("INFO", backup.GuestId, $"{backup.Archive}: restored in {restoring.TotalSeconds:F1} s, manifest of {actual.Entries.Count} entries "
            + $"({actual.ContentBytes} bytes hashed) in {clock.Elapsed.TotalSeconds:F1} s");
        return expected.FirstDifference(actual) is { } difference
            ? new VerificationOutcome(VerificationRecord.Failed, difference)
            : new VerificationOutcome(VerificationRecord.Verified, $"the file manifest matches ({expected.Entries.Count} entries)");
    }
}
