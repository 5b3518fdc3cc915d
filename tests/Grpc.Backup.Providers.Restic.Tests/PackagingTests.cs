using Grpc.Backup.Host;
using Grpc.Backup.Protocol;
using Grpc.Backup.Providers.Restic.Tests.Infrastructure;
using Grpc.Backup.Tests.Infrastructure;

namespace Grpc.Backup.Providers.Restic.Tests;

/// <summary>
/// The provider takes its socket from socket activation. The units themselves (build/systemd) and a round trip through
/// both activated sockets are tested in Grpc.Backup.Packaging.Tests.
/// </summary>
public sealed class PackagingTests
{
    [Fact]
    public async Task Under_socket_activation_the_provider_serves_the_passed_socket_and_binds_its_sideband_beside_it()
    {
        await using var template = await ResticProviderProcess.StartAsync(); // a repository and password owned by the provider's user
        await template.Process.DisposeAsync();
        string dir = Path.GetDirectoryName(template.Repository)!;
        string socketPath = Path.Combine(dir, "activated.sock");
        await using var activated = ChildProcess.Start("systemd-socket-activate",
            ["-l", socketPath, "setpriv", .. ResticProviderProcess.AsProvider, RepoPaths.ResticProvider,
             "--repository", template.Repository, "--password-file", template.PasswordFile,
             "--state-directory", Path.Combine(dir, "state"), "--runtime-directory", Path.Combine(dir, "run")]);
        await activated.WaitForFileAsync(socketPath, TimeSpan.FromSeconds(30));
        // The first connection starts the provider, which binds the sideband beside the passed socket.
        Task<ProviderConnection> connecting = ProviderConnection.ConnectAsync(ProviderEndpoint.Parse("unix:" + socketPath));
        await activated.WaitForFileAsync(socketPath + ".fds", TimeSpan.FromSeconds(30));
        await using var connection = await connecting;
        Assert.Equal("org.grpcbackup.restic", connection.Info.Name);
        var channel = await connection.GetFdChannelAsync(CancellationToken.None);
        Assert.Equal(16, channel.ChannelId.ToByteArray().Length);
    }
}
