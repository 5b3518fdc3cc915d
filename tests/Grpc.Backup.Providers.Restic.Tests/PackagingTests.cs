using Grpc.Backup.Host;
using Grpc.Backup.Protocol;
using Grpc.Backup.Providers.Restic.Tests.Infrastructure;
using Grpc.Backup.Tests.Infrastructure;

namespace Grpc.Backup.Providers.Restic.Tests;

/// <summary>The systemd units are valid, and the provider takes its socket from socket activation.</summary>
public sealed class PackagingTests
{
    private static string UnitDirectory => Path.Combine(RepoPaths.Root, "providers", "restic", "systemd");

    [Fact]
    public async Task The_socket_and_service_units_pass_systemd_analyze_verify()
    {
        using var work = new TempDirectory();
        // The units name the installed launcher; point them at this checkout's so verify can check ExecStart.
        foreach (string unit in Directory.GetFiles(UnitDirectory))
        {
            string text = (await File.ReadAllTextAsync(unit)).Replace(
                "/usr/lib/grpc-backup/providers/restic/grpc-backup-provider-restic", RepoPaths.ResticProvider, StringComparison.Ordinal);
            await File.WriteAllTextAsync(work.File(Path.GetFileName(unit)), text);
        }
        var (exitCode, stdout, stderr) = await ChildProcess.RunAsync("systemd-analyze",
            ["verify", work.File("grpc-backup-provider-restic.socket"), work.File("grpc-backup-provider-restic.service")]);
        Assert.True(exitCode == 0 && stderr.Length == 0, stdout + stderr);
        string service = await File.ReadAllTextAsync(Path.Combine(UnitDirectory, "grpc-backup-provider-restic.service"));
        Assert.Contains("User=grpc-backup-restic", service, StringComparison.Ordinal);
        Assert.Contains("NoNewPrivileges=yes", service, StringComparison.Ordinal);
        Assert.Contains("LoadCredential=restic-password:", service, StringComparison.Ordinal);
        Assert.DoesNotContain("--password ", service, StringComparison.Ordinal);
    }

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
