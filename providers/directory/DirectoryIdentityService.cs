using Grpc.Backup.Protocol;
using Grpc.Backup.Protocol.V1;
using Grpc.Core;

namespace Grpc.Backup.Providers.Directory;

/// <summary>
/// Identity of the directory provider. The capabilities are those of this build and never depend on the state of the
/// repository: VM backup over NBD or FILE_HANDLE (full and incremental; which one BackupGetMechanism answers is the
/// <c>--vm-mechanism</c> option), VM restore through qemu-img, container backup through the configured mechanism
/// (<c>--ct-mechanism</c>), container restore as a tar, every repository operation.
/// </summary>
public sealed class DirectoryIdentityService(DirectoryRepositoryOptions options) : Identity.IdentityBase
{
    public const string ProviderName = "org.grpcbackup.directory";

    private static readonly GetProviderInfoResponse Info = new()
    {
        Name = ProviderName,
        VendorVersion = typeof(DirectoryIdentityService).Assembly.GetName().Version?.ToString() ?? "0.0.0",
        ProtocolMajors = { ProtocolVersion.CurrentMajor },
        Capabilities = new Capabilities
        {
            VmBackupMechanisms = { VmBackupMechanism.Nbd, VmBackupMechanism.FileHandle },
            VmRestoreMechanisms = { VmRestoreMechanism.QemuImg },
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
            Limits = new Limits
            {
                MaxConcurrentBackups = 4,
                MaxFdsPerTransfer = 64,
                PreferredReadSizeBytes = DirectoryRepositoryOptions.DefaultCopyRequestSize,
            },
        },
        Manifest = { ["storage"] = "directory", ["layout"] = "raw full + qcow2 incremental overlays" },
    };

    public override Task<GetProviderInfoResponse> GetProviderInfo(GetProviderInfoRequest request, ServerCallContext context)
    {
        GetProviderInfoResponse info = Info.Clone();
        info.Capabilities.ContainerBackupMechanisms.Add(options.ContainerMechanism);
        return Task.FromResult(info);
    }

    public override Task<ProbeResponse> Probe(ProbeRequest request, ServerCallContext context)
    {
        string path = options.RepositoryPath;
        if (!System.IO.Directory.Exists(path))
        {
            return Task.FromResult(Unhealthy($"repository directory {path} does not exist"));
        }
        foreach (string tool in new[] { options.QemuImgPath, options.QemuNbdPath })
        {
            if (!File.Exists(tool))
            {
                return Task.FromResult(Unhealthy($"{tool} is not installed (Debian package qemu-utils)"));
            }
        }
        return Task.FromResult(new ProbeResponse { State = ProbeResponse.Types.State.Ready });
    }

    private static ProbeResponse Unhealthy(string message) =>
        new() { State = ProbeResponse.Types.State.Unhealthy, Message = message };
}
