using Grpc.Backup.Protocol;
using Grpc.Backup.Protocol.V1;
using Grpc.Core;

namespace Grpc.Backup.Providers.Borg;

/// <summary>
/// Identity of the Borg provider. Capabilities are those of this build: VM backup over NBD and FILE_HANDLE (full and
/// incremental), containers as TAR_STREAM, restores through qemu-img and as tar, every repository operation.
/// </summary>
public sealed class BorgIdentityService(BorgProviderOptions options) : Identity.IdentityBase
{
    public const string ProviderName = "org.grpcbackup.borg";

    private static readonly GetProviderInfoResponse Info = new()
    {
        Name = ProviderName,
        VendorVersion = typeof(BorgIdentityService).Assembly.GetName().Version?.ToString() ?? "0.0.0",
        ProtocolMajors = { ProtocolVersion.CurrentMajor },
        Capabilities = new Capabilities
        {
            VmBackupMechanisms = { VmBackupMechanism.Nbd, VmBackupMechanism.FileHandle },
            VmRestoreMechanisms = { VmRestoreMechanism.QemuImg },
            ContainerBackupMechanisms = { ContainerBackupMechanism.TarStream },
            ContainerRestoreMechanisms = { ContainerRestoreMechanism.Tar },
            IncrementalVmBackup = true,
            RepositoryOperations =
            {
                RepositoryOperation.ListBackups,
                RepositoryOperation.StatBackup,
                RepositoryOperation.DeleteBackup,
                RepositoryOperation.PruneBackups,
                RepositoryOperation.UpdateBackupAttributes,
                RepositoryOperation.GetCapacity,
            },
            Limits = new Limits { MaxConcurrentBackups = 1, MaxFdsPerTransfer = 64, PreferredReadSizeBytes = 256 * 1024 },
        },
        Manifest =
        {
            ["storage"] = "borg",
            ["layout"] = "one borg archive per backup: guest.conf, firewall.conf, <device>.raw whole images, fixed 4 MiB chunks",
        },
    };

    public override Task<GetProviderInfoResponse> GetProviderInfo(GetProviderInfoRequest request, ServerCallContext context) =>
        Task.FromResult(Info);

    public override Task<ProbeResponse> Probe(ProbeRequest request, ServerCallContext context)
    {
        if (!File.Exists(options.BorgPath))
        {
            return Task.FromResult(Unhealthy($"{options.BorgPath} is not installed (Debian package borgbackup)"));
        }
        if (options.PassphraseFile is { } passphrase && !File.Exists(passphrase))
        {
            return Task.FromResult(Unhealthy($"the passphrase file {passphrase} does not exist or is not readable"));
        }
        if (!options.IsRemote && !Directory.Exists(options.Repository))
        {
            return Task.FromResult(Unhealthy($"the repository {options.Repository} does not exist (borg init it first)"));
        }
        return Task.FromResult(new ProbeResponse { State = ProbeResponse.Types.State.Ready });
    }

    private static ProbeResponse Unhealthy(string message) => new() { State = ProbeResponse.Types.State.Unhealthy, Message = message };
}
