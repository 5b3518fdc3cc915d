namespace Grpc.Backup.Providers.Borg.Tests;

/// <summary>The shipped socket and service units pass <c>systemd-analyze verify</c> without a single complaint.</summary>
public sealed class SystemdUnitTests
{
    private const string Installed = "/usr/lib/grpc-backup/grpc-backup-provider-borg";

    [Fact]
    public async Task The_socket_and_service_units_verify_cleanly_and_a_typo_would_be_caught()
    {
        using var directory = new TempDirectory();
        string units = Path.Combine(RepoPaths.Root, "providers", "borg", "systemd");
        string service = await File.ReadAllTextAsync(Path.Combine(units, "grpc-backup-provider-borg.service"));
        Assert.Contains(Installed, service, StringComparison.Ordinal);
        Assert.Contains("User=grpc-backup-borg", service, StringComparison.Ordinal);
        Assert.Contains("NoNewPrivileges=yes", service, StringComparison.Ordinal);
        // verify insists that ExecStart exists: point it at this build's apphost.
        string apphost = Path.Combine(Path.GetDirectoryName(RepoPaths.BorgProviderDll)!, "grpc-backup-provider-borg");

        (int exit, string output) = await VerifyAsync(directory.File("good"), units, service.Replace(Installed, apphost, StringComparison.Ordinal));
        Assert.True(exit == 0 && output.Length == 0, output);

        (_, string typo) = await VerifyAsync(directory.File("typo"), units,
            service.Replace(Installed, apphost, StringComparison.Ordinal).Replace("NoNewPrivileges=", "NoNewPrivilegez=", StringComparison.Ordinal));
        Assert.Contains("NoNewPrivilegez", typo, StringComparison.Ordinal);
    }

    private static async Task<(int, string)> VerifyAsync(string directory, string units, string service)
    {
        System.IO.Directory.CreateDirectory(directory);
        await File.WriteAllTextAsync(Path.Combine(directory, "grpc-backup-provider-borg.service"), service);
        File.Copy(Path.Combine(units, "grpc-backup-provider-borg.socket"), Path.Combine(directory, "grpc-backup-provider-borg.socket"));
        (int exit, string stdout, string stderr) = await ChildProcess.RunAsync("systemd-analyze",
            ["verify", Path.Combine(directory, "grpc-backup-provider-borg.socket"), Path.Combine(directory, "grpc-backup-provider-borg.service")]);
        return (exit, (stdout + stderr).Trim());
    }
}
