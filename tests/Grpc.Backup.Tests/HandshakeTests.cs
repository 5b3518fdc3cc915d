using Grpc.Backup.Host;
using Grpc.Backup.Protocol.V1;
using Grpc.Backup.Tests.Infrastructure;

namespace Grpc.Backup.Tests;

public sealed class HandshakeTests
{
    [Fact]
    public async Task Host_connects_to_the_directory_provider_process_and_negotiates_v1()
    {
        await using var provider = await DirectoryProviderProcess.StartAsync();

        await using var connection = await ProviderConnection.ConnectAsync(provider.Endpoint);

        Assert.Equal("org.grpcbackup.directory", connection.Info.Name);
        Assert.Equal(1u, connection.NegotiatedMajor);
        Assert.Contains(1u, connection.Info.ProtocolMajors);
    }

    [Fact]
    public async Task Provider_that_speaks_only_an_unsupported_major_is_refused_with_a_clear_error()
    {
        await using var provider = await InProcessProvider.StartAsync(identity =>
        {
            identity.Info.ProtocolMajors.Clear();
            identity.Info.ProtocolMajors.Add(2);
        });

        var error = await Assert.ThrowsAsync<ProviderHandshakeException>(() => ProviderConnection.ConnectAsync(provider.Endpoint));

        Assert.Contains("speaks protocol major(s) [2]", error.Message, StringComparison.Ordinal);
        Assert.Contains("this host speaks [1]", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Provider_that_speaks_several_majors_is_used_at_the_one_the_host_speaks()
    {
        await using var provider = await InProcessProvider.StartAsync(identity => identity.Info.ProtocolMajors.Add(2));

        await using var connection = await ProviderConnection.ConnectAsync(provider.Endpoint);

        Assert.Equal(1u, connection.NegotiatedMajor);
    }

    [Fact]
    public async Task Host_waits_while_the_provider_is_not_ready_then_connects()
    {
        await using var provider = await InProcessProvider.StartAsync(identity =>
        {
            identity.ProbeAnswers.Enqueue(new ProbeResponse { State = ProbeResponse.Types.State.NotReady, Message = "opening repository" });
            identity.ProbeAnswers.Enqueue(new ProbeResponse { State = ProbeResponse.Types.State.NotReady, Message = "opening repository" });
            identity.ProbeAnswers.Enqueue(new ProbeResponse { State = ProbeResponse.Types.State.Ready });
        });
        var options = new ProviderConnectionOptions { ReadinessPollInterval = TimeSpan.FromMilliseconds(20) };

        await using var connection = await ProviderConnection.ConnectAsync(provider.Endpoint, options);

        Assert.Equal(3, provider.Identity.ProbeCalls);
    }

    [Fact]
    public async Task Provider_that_never_becomes_ready_is_refused_after_the_readiness_timeout()
    {
        await using var provider = await InProcessProvider.StartAsync(identity =>
            identity.ProbeAnswers.Enqueue(new ProbeResponse { State = ProbeResponse.Types.State.NotReady, Message = "still mounting" }));
        var options = new ProviderConnectionOptions
        {
            ReadinessTimeout = TimeSpan.FromMilliseconds(300),
            ReadinessPollInterval = TimeSpan.FromMilliseconds(20),
        };

        var error = await Assert.ThrowsAsync<ProviderHandshakeException>(() => ProviderConnection.ConnectAsync(provider.Endpoint, options));

        Assert.Contains("was not ready", error.Message, StringComparison.Ordinal);
        Assert.Contains("still mounting", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Unhealthy_provider_is_refused_with_its_reason()
    {
        await using var provider = await InProcessProvider.StartAsync(identity =>
            identity.ProbeAnswers.Enqueue(new ProbeResponse { State = ProbeResponse.Types.State.Unhealthy, Message = "repository unreachable" }));

        var error = await Assert.ThrowsAsync<ProviderHandshakeException>(() => ProviderConnection.ConnectAsync(provider.Endpoint));

        Assert.Contains("unhealthy: repository unreachable", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Directory_provider_without_its_repository_reports_unhealthy()
    {
        await using var provider = await DirectoryProviderProcess.StartAsync();
        Directory.Delete(provider.RepositoryPath);

        var error = await Assert.ThrowsAsync<ProviderHandshakeException>(() => ProviderConnection.ConnectAsync(provider.Endpoint));

        Assert.Contains("does not exist", error.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("Bad Name!", "is not a DNS-like name")]
    [InlineData("", "is not a DNS-like name")]
    public async Task Invalid_provider_info_is_rejected(string name, string expected)
    {
        await using var provider = await InProcessProvider.StartAsync(identity => identity.Info.Name = name);

        var error = await Assert.ThrowsAsync<ProviderHandshakeException>(() => ProviderConnection.ConnectAsync(provider.Endpoint));

        Assert.Contains(expected, error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Capabilities_with_an_unspecified_enum_value_are_rejected()
    {
        await using var provider = await InProcessProvider.StartAsync(identity =>
            identity.Info.Capabilities.VmBackupMechanisms.Add(VmBackupMechanism.Unspecified));

        var error = await Assert.ThrowsAsync<ProviderHandshakeException>(() => ProviderConnection.ConnectAsync(provider.Endpoint));

        Assert.Contains("vm_backup_mechanisms holds an unspecified", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Nothing_listening_is_reported_as_a_handshake_failure_with_unavailable()
    {
        using var directory = new TempDirectory();
        var endpoint = Protocol.ProviderEndpoint.Parse("unix:" + directory.File("nobody.sock"));
        var options = new ProviderConnectionOptions { MaxRetries = 1, RetryBaseDelay = TimeSpan.FromMilliseconds(10) };

        var error = await Assert.ThrowsAsync<ProviderHandshakeException>(() => ProviderConnection.ConnectAsync(endpoint, options));

        Assert.Contains("Unavailable", error.Message, StringComparison.Ordinal);
    }
}
