using Grpc.Backup.Protocol;
using Grpc.Backup.Protocol.V1;
using Grpc.Backup.Provider;

namespace Grpc.Backup.Tests;

/// <summary>The identity shape the SDK gives every C# provider.</summary>
public sealed class ProviderIdentityServiceTests
{
    [Fact]
    public async Task The_description_is_versioned_by_the_providers_assembly_and_the_same_on_every_call()
    {
        var service = new Sample(null);
        GetProviderInfoResponse first = await service.GetProviderInfo(new GetProviderInfoRequest(), null!);
        GetProviderInfoResponse second = await service.GetProviderInfo(new GetProviderInfoRequest(), null!);

        Assert.Equal(first, second);
        Assert.Equal("org.example.sample", first.Name);
        Assert.Equal(typeof(ProviderIdentityServiceTests).Assembly.GetName().Version!.ToString(), first.VendorVersion);
        Assert.Equal([ProtocolVersion.CurrentMajor], first.ProtocolMajors);
        Assert.Equal(ProviderIdentityService.AllRepositoryOperations, first.Capabilities.RepositoryOperations);
        Assert.Equal("here", first.Manifest["storage"]);
    }

    [Fact]
    public async Task Probe_is_ready_without_a_problem_and_unhealthy_with_its_message()
    {
        ProbeResponse ready = await new Sample(null).Probe(new ProbeRequest(), null!);
        ProbeResponse broken = await new Sample("the repository is gone").Probe(new ProbeRequest(), null!);

        Assert.Equal(ProbeResponse.Types.State.Ready, ready.State);
        Assert.Equal(ProbeResponse.Types.State.Unhealthy, broken.State);
        Assert.Equal("the repository is gone", broken.Message);
    }

    private sealed class Sample(string? problem) : ProviderIdentityService
    {
        private static readonly GetProviderInfoResponse Description = Describe("org.example.sample", typeof(ProviderIdentityServiceTests),
            new Capabilities { RepositoryOperations = { AllRepositoryOperations } }, new Dictionary<string, string> { ["storage"] = "here" });

        protected override GetProviderInfoResponse Info => Description;

        protected override string? FindProblem() => problem;
    }
}
