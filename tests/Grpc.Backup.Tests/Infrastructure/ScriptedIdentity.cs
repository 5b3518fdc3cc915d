using System.Collections.Concurrent;
using Grpc.Backup.Protocol;
using Grpc.Backup.Protocol.V1;
using Grpc.Core;

namespace Grpc.Backup.Tests.Infrastructure;

/// <summary>An Identity service whose answers a test sets.</summary>
internal sealed class ScriptedIdentity : Identity.IdentityBase
{
    public GetProviderInfoResponse Info { get; set; } = new()
    {
        Name = "org.grpcbackup.test",
        VendorVersion = "1.0.0-test",
        ProtocolMajors = { ProtocolVersion.CurrentMajor },
        Capabilities = new Capabilities(),
    };

    /// <summary>Probe answers, consumed in order; the last one repeats.</summary>
    public ConcurrentQueue<ProbeResponse> ProbeAnswers { get; } = new();

    public int ProbeCalls;

    public override Task<GetProviderInfoResponse> GetProviderInfo(GetProviderInfoRequest request, ServerCallContext context) =>
        Task.FromResult(Info);

    public override Task<ProbeResponse> Probe(ProbeRequest request, ServerCallContext context)
    {
        Interlocked.Increment(ref ProbeCalls);
        if (ProbeAnswers.Count > 1 && ProbeAnswers.TryDequeue(out var next))
        {
            return Task.FromResult(next);
        }
        return Task.FromResult(ProbeAnswers.TryPeek(out var last) ? last : new ProbeResponse { State = ProbeResponse.Types.State.Ready });
    }
}
