using Google.Protobuf;
using Grpc.Backup.Protocol.V1;
using Grpc.Backup.Provider;
using Grpc.Backup.Transport;
using Grpc.Core;

namespace Grpc.Backup.Tests.Infrastructure;

/// <summary>
/// A Restore service that serves one VM archive with one device whose data is <see cref="VolumeFile"/>, handed to the
/// host as an fd on the sideband: a test makes it any file, hostile ones included.
/// </summary>
internal sealed class ScriptedRestore(ProviderFds fds) : Protocol.V1.Restore.RestoreBase
{
    public const string Device = "drive-scsi0";

    public string? VolumeFile { get; set; }

    /// <summary>When set, RestoreVmVolumeInit answers with this path instead of passing an fd.</summary>
    public string? SourcePath { get; set; }

    /// <summary>When set, RestoreVmVolumeInit answers with this nbd_uri instead of passing an fd.</summary>
    public string? SourceNbdUri { get; set; }

    /// <summary>When set, the size RestoreVmInit declares instead of the file's.</summary>
    public ulong? DeclaredSize { get; set; }

    public int VolumeCleanups;
    public int VmCleanups;

    public override Task<RestoreGetMechanismResponse> RestoreGetMechanism(RestoreGetMechanismRequest request, ServerCallContext context) =>
        Task.FromResult(new RestoreGetMechanismResponse { GuestType = GuestType.Vm, Vm = VmRestoreMechanism.QemuImg });

    public override Task<ArchiveGetGuestConfigResponse> ArchiveGetGuestConfig(ArchiveGetGuestConfigRequest request, ServerCallContext context) =>
        Task.FromResult(new ArchiveGetGuestConfigResponse { GuestConfig = ByteString.CopyFromUtf8("type: vm\n") });

    public override Task<ArchiveGetFirewallConfigResponse> ArchiveGetFirewallConfig(ArchiveGetFirewallConfigRequest request, ServerCallContext context) =>
        Task.FromResult(new ArchiveGetFirewallConfigResponse { Present = false });

    public override Task<RestoreVmInitResponse> RestoreVmInit(RestoreVmInitRequest request, ServerCallContext context) =>
        Task.FromResult(new RestoreVmInitResponse
        {
            Volumes = { new VolumeSize { DeviceName = Device, SizeBytes = DeclaredSize ?? (ulong)new FileInfo(RequireFile()).Length } },
        });

    public override async Task<RestoreVmVolumeInitResponse> RestoreVmVolumeInit(RestoreVmVolumeInitRequest request, ServerCallContext context)
    {
        if (SourcePath is not null)
        {
            return new RestoreVmVolumeInitResponse { Path = SourcePath };
        }
        if (SourceNbdUri is not null)
        {
            return new RestoreVmVolumeInitResponse { NbdUri = SourceNbdUri };
        }
        using var handle = File.OpenHandle(RequireFile(), FileMode.Open, FileAccess.Read);
        IReadOnlyList<FdRef> refs = await fds.SendToHostAsync(request.FdChannelId, [new FdToSend(handle, Transport.FdKind.File)],
            context.CancellationToken);
        return new RestoreVmVolumeInitResponse { Fd = refs[0] };
    }

    public override Task<RestoreVmVolumeCleanupResponse> RestoreVmVolumeCleanup(RestoreVmVolumeCleanupRequest request, ServerCallContext context)
    {
        Interlocked.Increment(ref VolumeCleanups);
        return Task.FromResult(new RestoreVmVolumeCleanupResponse());
    }

    public override Task<RestoreVmCleanupResponse> RestoreVmCleanup(RestoreVmCleanupRequest request, ServerCallContext context)
    {
        Interlocked.Increment(ref VmCleanups);
        return Task.FromResult(new RestoreVmCleanupResponse());
    }

    private string RequireFile() => VolumeFile ?? throw new RpcException(new Status(StatusCode.FailedPrecondition, "no volume file set"));
}
