using Grpc.Backup.Conformance.Tests.Infrastructure;
using Grpc.Backup.Providers.Restic.Tests.Infrastructure;

namespace Grpc.Backup.Conformance.Tests;

/// <summary>The Python restic provider, unprivileged, written from the contract alone, passes the kit.</summary>
public sealed class ResticProviderConformanceTests(Xunit.Abstractions.ITestOutputHelper output)
{
    [Fact]
    public async Task The_restic_provider_passes_every_check()
    {
        await using var provider = await ResticProviderProcess.StartAsync();
        using var scratch = new TempDirectory(PassingRun.ScratchMode);

        ConformanceRun run = await ConformanceRun.RunAsync(provider.Endpoint.ToString(), "--scratch", scratch.Path);
        output.WriteLine(run.Stdout);

        PassingRun.Assert(run, scratch.Path);
        Assert.DoesNotContain("conformance-", await provider.ResticAsync("snapshots", "--json"), StringComparison.Ordinal);
    }
}
