using Grpc.Backup.Protocol.V1;
using Grpc.Backup.Provider;

namespace Grpc.Backup.Providers.Directory;

/// <summary>
/// Identity of the directory provider. The capabilities are those of this build and never depend on the state of the
/// repository: VM backup over NBD or FILE_HANDLE (full and incremental; which one BackupGetMechanism answers is the
/// <c>--vm-mechanism</c> option), VM restore through qemu-img, container backup through the configured mechanism
/// (<c>--ct-mechanism</c>), container restore as a tar, every repository operation.
/// </summary>
public sealed class DirectoryIdentityService : ProviderIdentityService
{
    public const string ProviderName = "org.grpcbackup.directory";

    private readonly DirectoryRepositoryOptions _options;

    public DirectoryIdentityService(DirectoryRepositoryOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        _options = options;
        Info = Describe(ProviderName, typeof(DirectoryIdentityService), new Capabilities
        {
            VmBackupMechanisms = { VmBackupMechanism.Nbd, VmBackupMechanism.FileHandle },
            VmRestoreMechanisms = { VmRestoreMechanism.QemuImg },
            ContainerBackupMechanisms = { options.ContainerMechanism },
            ContainerRestoreMechanisms = { ContainerRestoreMechanism.Tar },
            IncrementalVmBackup = true,
            RepositoryOperations = { AllRepositoryOperations },
            Limits = new Limits
            {
                MaxConcurrentBackups = 4,
                MaxFdsPerTransfer = 64,
                PreferredReadSizeBytes = DirectoryRepositoryOptions.DefaultCopyRequestSize,
            },
        }, new Dictionary<string, string> { ["storage"] = "directory", ["layout"] = "raw full + qcow2 incremental overlays" });
    }

    protected override GetProviderInfoResponse Info { get; }

    protected override string? FindProblem()
    {
        string path = _options.RepositoryPath;
        if (!System.IO.Directory.Exists(path))
        {
            return $"repository directory {path} does not exist";
        }
        foreach (string tool in new[] { _options.QemuImgPath, _options.QemuNbdPath })
        {
            if (!File.Exists(tool))
            {
                return $"{tool} is not installed (Debian package qemu-utils)";
            }
        }
        return null;
    }
}
