using Grpc.Backup.Protocol;
using Grpc.Backup.Protocol.V1;
using Grpc.Core;

namespace Grpc.Backup.Providers.Directory;

/// <summary>
/// Identity of the directory provider. Its capabilities list only what this build implements; the rest of the
/// contract answers UNIMPLEMENTED until it lands.
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
            Limits = new Limits { MaxConcurrentBackups = 4, MaxFdsPerTransfer = 64, PreferredReadSizeBytes = 4 * 1024 * 1024 },
        },
        Manifest = { ["storage"] = "directory" },
    };

    public override Task<GetProviderInfoResponse> GetProviderInfo(GetProviderInfoRequest request, ServerCallContext context) =>
        Task.FromResult(Info);

    public override Task<ProbeResponse> Probe(ProbeRequest request, ServerCallContext context)
    {
        string path = options.RepositoryPath;
        if (!System.IO.Directory.Exists(path))
        {
            return Task.FromResult(new ProbeResponse
            {
                State = ProbeResponse.Types.State.Unhealthy,
                Message = $"repository directory {path} does not exist",
            });
        }
        return Task.FromResult(new ProbeResponse { State = ProbeResponse.Types.State.Ready });
    }
}
