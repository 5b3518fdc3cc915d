using Grpc.Backup.Conformance.Tests.Infrastructure;

namespace Grpc.Backup.Conformance.Tests;

/// <summary>The kit fails a provider that breaks the contract, names the broken checks, and passes the rest.</summary>
public sealed class BrokenProviderTests
{
    [Fact]
    public async Task A_provider_with_a_wrong_code_and_a_non_idempotent_init_fails_those_checks_by_name()
    {
        await using var provider = await BrokenProvider.StartAsync();
        using var scratch = new TempDirectory(PassingRun.ScratchMode);

        ConformanceRun run = await ConformanceRun.RunAsync(provider.Endpoint.ToString(), "--scratch", scratch.Path, "--only", @"^(identity|job|backup)\.");

        Assert.True(run.ExitCode == 1, run.ToString());
        Assert.Equal("FAIL", run.Outcome("job.cleanup-unknown"));
        Assert.Contains("JobCleanup of an unknown job: expected OK, got NotFound (UNKNOWN_OPERATION)", run.Stdout, StringComparison.Ordinal);
        Assert.Equal("FAIL", run.Outcome("backup.init-idempotent"));
        Assert.Contains("a repeated BackupInit returned", run.Stdout, StringComparison.Ordinal);
        // What it does right still passes, and --only kept the other areas out.
        Assert.Equal("PASS", run.Outcome("identity.capabilities-stable"));
        Assert.Equal("PASS", run.Outcome("job.init-idempotent"));
        Assert.Null(run.Outcome("vm.full-backup"));
        Assert.Null(run.Outcome("fd.reused-token"));
        Assert.Empty(Directory.EnumerateFileSystemEntries(scratch.Path));
    }
}
