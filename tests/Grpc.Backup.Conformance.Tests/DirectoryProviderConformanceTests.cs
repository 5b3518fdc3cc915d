using Grpc.Backup.Conformance.Tests.Infrastructure;
using Grpc.Backup.Tests.Infrastructure;

namespace Grpc.Backup.Conformance.Tests;

/// <summary>The reference provider passes the kit in both VM mechanisms and both container mechanisms.</summary>
public sealed class DirectoryProviderConformanceTests
{
    [Theory]
    [InlineData("nbd", "directory")]
    [InlineData("file-handle", "tar-stream")]
    public async Task The_directory_provider_passes_every_check(string vmMechanism, string ctMechanism)
    {
        await using var provider = await DirectoryProviderProcess.StartAsync(extraArguments: ["--vm-mechanism", vmMechanism, "--ct-mechanism", ctMechanism]);
        using var scratch = new TempDirectory(PassingRun.ScratchMode);

        ConformanceRun run = await ConformanceRun.RunAsync(provider.Endpoint.ToString(), "--scratch", scratch.Path);

        PassingRun.Assert(run, scratch.Path);
        // Everything the kit stored was deleted through the provider: no archive directory is left (only each guest's
        // incremental-state.json, which the contract has no call to drop).
        Assert.Empty(Directory.EnumerateDirectories(provider.RepositoryPath, "conformance-*").SelectMany(Directory.EnumerateDirectories));
    }
}
