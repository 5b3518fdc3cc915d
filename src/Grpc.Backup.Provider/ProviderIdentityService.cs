using Grpc.Backup.Protocol;
using Grpc.Backup.Protocol.V1;
using Grpc.Core;

namespace Grpc.Backup.Provider;

/// <summary>
/// The shape every C# provider's Identity service shares: GetProviderInfo answers the same description on every call
/// (name, this build's version, the protocol majors, capabilities that never depend on the repository's state), and
/// Probe is READY unless <see cref="FindProblem"/> names what keeps the provider from working.
/// </summary>
public abstract class ProviderIdentityService : Identity.IdentityBase
{
    /// <summary>Every repository operation of the contract, for a provider that implements them all.</summary>
    public static IReadOnlyList<RepositoryOperation> AllRepositoryOperations { get; } =
    [
        RepositoryOperation.ListBackups,
        RepositoryOperation.StatBackup,
        RepositoryOperation.DeleteBackup,
        RepositoryOperation.PruneBackups,
        RepositoryOperation.UpdateBackupAttributes,
        RepositoryOperation.GetCapacity,
    ];

    /// <summary>What GetProviderInfo answers; the same on every call.</summary>
    protected abstract GetProviderInfoResponse Info { get; }

    /// <summary>The first thing that keeps the provider from working (a missing tool or repository), or null when ready.</summary>
    protected abstract string? FindProblem();

    /// <summary>A description named <paramref name="name"/>, versioned by the assembly of <paramref name="service"/>.</summary>
    protected static GetProviderInfoResponse Describe(string name, Type service, Capabilities capabilities,
        IReadOnlyDictionary<string, string> manifest)
    {
        ArgumentNullException.ThrowIfNull(service);
        ArgumentNullException.ThrowIfNull(manifest);
        var info = new GetProviderInfoResponse
        {
            Name = name,
            VendorVersion = service.Assembly.GetName().Version?.ToString() ?? "0.0.0",
            ProtocolMajors = { ProtocolVersion.CurrentMajor },
            Capabilities = capabilities,
        };
        foreach (var (key, value) in manifest)
        {
            info.Manifest[key] = value;
        }
        return info;
    }

    public sealed override Task<GetProviderInfoResponse> GetProviderInfo(GetProviderInfoRequest request, ServerCallContext context) =>
        Task.FromResult(Info);

    public sealed override Task<ProbeResponse> Probe(ProbeRequest request, ServerCallContext context) =>
        Task.FromResult(FindProblem() is { } problem
            ? new ProbeResponse { State = ProbeResponse.Types.State.Unhealthy, Message = problem }
            : new ProbeResponse { State = ProbeResponse.Types.State.Ready });
}
