using Grpc.Backup.Conformance.Tests.Infrastructure;
using Grpc.Backup.Providers.Borg.Tests.Infrastructure;

namespace Grpc.Backup.Conformance.Tests;

/// <summary>The Borg provider, unprivileged on an encrypted repository, passes the kit.</summary>
public sealed class BorgProviderConformanceTests(Xunit.Abstractions.ITestOutputHelper output)
{
    [Fact]
    public async Task The_borg_provider_passes_every_check()
    {
        await using var provider = await BorgProvider.StartAsync();
        using var scratch = new TempDirectory(PassingRun.ScratchMode);

        ConformanceRun run = await ConformanceRun.RunAsync(provider.Endpoint.ToString(), "--scratch", scratch.Path);
        output.WriteLine(run.Stdout);

        PassingRun.Assert(run, scratch.Path);
        var (exit, archives, stderr) = await provider.BorgAsync("list", "--short", provider.RepositoryPath);
        Assert.True(exit == 0, stderr);
        Assert.DoesNotContain("conformance-", archives, StringComparison.Ordinal);
    }
}
