using Grpc.Backup.Protocol.V1;
using Grpc.Backup.Provider;
using Grpc.Backup.Transport;
using Grpc.Core;

namespace Grpc.Backup.Tests.Infrastructure;

/// <summary>A Restore service that hands the host a file through the fd sideband, as a real provider does for a volume.</summary>
internal sealed class ScriptedRestore(ProviderFds fds) : Protocol.V1.Restore.RestoreBase
{
    /// <summary>The file whose fd RestoreVmVolumeInit passes back.</summary>
    public string? VolumeFile { get; set; }

    public override async Task<RestoreVmVolumeInitResponse> RestoreVmVolumeInit(RestoreVmVolumeInitRequest request, ServerCallContext context)
    {
        string path = VolumeFile ?? throw new RpcException(new Status(StatusCode.FailedPrecondition, "no volume file set"));
        using var handle = File.OpenHandle(path, FileMode.Open, FileAccess.Read);
        IReadOnlyList<FdRef> refs = await fds.SendToHostAsync(request.FdChannelId, [new FdToSend(handle, Transport.FdKind.File)],
            context.CancellationToken);
        return new RestoreVmVolumeInitResponse { Fd = refs[0] };
    }
}
