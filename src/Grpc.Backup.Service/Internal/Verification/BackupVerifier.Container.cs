using Grpc.Backup.Host;
using Grpc.Backup.Service.Internal.Catalog;
using Grpc.Backup.Service.Internal.Tasks;

namespace Grpc.Backup.Service.Internal.Verification;

/// <summary>Containers: the restore is compared with the file manifest recorded at backup time.</summary>
internal sealed partial class BackupVerifier
{
    private Task<VerificationOutcome> VerifyContainerAsync(ServiceTask task, ProviderConnection provider, BackupRecord backup, string scratch,
        CancellationToken cancellationToken)
    {
        _ = (task, provider, scratch, cancellationToken);
        return Task.FromResult(catalog.ContainerManifest(backup.Storage, backup.Archive) is null
            ? new VerificationOutcome(VerificationRecord.NotVerifiable, "no file manifest was recorded for this container backup")
            : new VerificationOutcome(VerificationRecord.NotVerifiable, "container manifests are not compared yet"));
    }
}
