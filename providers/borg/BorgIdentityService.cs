using Grpc.Backup.Protocol.V1;
using Grpc.Backup.Provider;

namespace Grpc.Backup.Providers.Borg;

/// <summary>
/// Identity of the Borg provider. Capabilities are those of this build: VM backup over NBD and FILE_HANDLE (full and
/// incremental), containers as TAR_STREAM, restores through qemu-img and as tar, every repository operation.
/// </summary>
public sealed class BorgIdentityService(BorgProviderOptions options) : ProviderIdentityService
{
    public const string ProviderName = "org.grpcbackup.borg";

    private static readonly GetProviderInfoResponse Description = Describe(ProviderName, typeof(BorgIdentityService), new Capabilities
    {
        VmBackupMechanisms = { VmBackupMechanism.Nbd, VmBackupMechanism.FileHandle },
        VmRestoreMechanisms = { VmRestoreMechanism.QemuImg },
        ContainerBackupMechanisms = { ContainerBackupMechanism.TarStream },
        ContainerRestoreMechanisms = { ContainerRestoreMechanism.Tar },
        IncrementalVmBackup = true,
        RepositoryOperations = { AllRepositoryOperations },
        Limits = new Limits { MaxConcurrentBackups = 1, MaxFdsPerTransfer = 64, PreferredReadSizeBytes = 256 * 1024 },
    }, new Dictionary<string, string>
    {
        ["storage"] = "borg",
        ["layout"] = "one borg archive per backup: guest.conf, firewall.conf, <device>.raw whole images, fixed 4 MiB chunks",
    });

    protected override GetProviderInfoResponse Info => Description;

    protected override string? FindProblem()
    {
        if (!File.Exists(options.BorgPath))
        {
            return $"{options.BorgPath} is not installed (Debian package borgbackup)";
        }
        if (options.PassphraseFile is { } passphrase && !File.Exists(passphrase))
        {
            return $"the passphrase file {passphrase} does not exist or is not readable";
        }
        if (!options.IsRemote && !Directory.Exists(options.Repository))
        {
            return $"the repository {options.Repository} does not exist (borg init it first)";
        }
        return null;
    }
}
