using Grpc.Backup.Orchestrator;
using Grpc.Backup.Packaging.Tests.Infrastructure;

namespace Grpc.Backup.Packaging.Tests;

/// <summary>
/// Each provider sidecar started as its units start it (<see cref="SocketActivatedSidecar"/>: both sockets passed by
/// socket activation, the unit's user, mode, directories, credentials and command line) backs up the running demo
/// guest and restores it to the disks' content at the backup's instant.
/// </summary>
public sealed class SocketActivationTests
{
    private const string Secret = "pw-5b1d0c7e-packaging-staple";

    [Theory]
    [InlineData("directory")]
    [InlineData("borg")]
    [InlineData("restic")]
    public async Task A_sidecar_started_as_its_units_start_it_backs_up_and_restores_a_running_vm(string provider)
    {
        using var scratch = new GuestScratch();
        // The stand-in for the host's /: searchable by the provider's user, as / is.
        using var root = new TempDirectory(UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute
            | UnixFileMode.GroupExecute | UnixFileMode.OtherExecute);
        await using var guest = await DemoGuestProcess.StartAsync(scratch.File("guest"));
        await using var sidecar = await SocketActivatedSidecar.StartAsync(provider, root.Path, Credentials(provider), e => PrepareAsync(provider, e));
        Assert.Equal((UnixFileMode)sidecar.SocketMode, File.GetUnixFileMode(sidecar.Endpoint.SocketPath));

        await using var connection = await sidecar.ConnectAsync();
        // The C# providers are Type=notify (the SDK's UseSystemd); the Python one is Type=simple.
        Assert.Equal(provider != "restic", await sidecar.WaitForReadyAsync(TimeSpan.FromSeconds(30)));
        Assert.Equal((UnixFileMode)sidecar.SocketMode, File.GetUnixFileMode(sidecar.Endpoint.SidebandPath));
        // The provider got both sockets from socket activation: it bound neither (it could not: the directory is root's).
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute | UnixFileMode.GroupRead
            | UnixFileMode.GroupExecute | UnixFileMode.OtherRead | UnixFileMode.OtherExecute,
            File.GetUnixFileMode(Path.GetDirectoryName(sidecar.Endpoint.SocketPath)!));
        string status = await File.ReadAllTextAsync($"/proc/{sidecar.ProviderPid}/status");
        int uid = sidecar.Account.Uid;
        Assert.Contains($"Uid:\t{uid}\t{uid}\t{uid}\t{uid}\n", status, StringComparison.Ordinal);
        Assert.Contains("NoNewPrivs:\t1\n", status, StringComparison.Ordinal);
        Assert.Contains("CapBnd:\t0000000000000000\n", status, StringComparison.Ordinal);
        Assert.DoesNotContain(Secret, await File.ReadAllTextAsync($"/proc/{sidecar.ProviderPid}/cmdline"), StringComparison.Ordinal);

        VmBackupResult backup = await HostJobs.BackupAsync(connection, guest, scratch.Directory);
        IReadOnlyDictionary<string, string> instant = guest.LastInstant();
        await HostJobs.AssertRestoresToAsync(connection, backup.ArchiveName, instant, guest.Guest.RawConfig.ToArray(), scratch.File("restore"));
        // The data went where the unit's ReadWritePaths= lets it write.
        string repository = SocketActivatedSidecar.Rerooted(root.Path, $"/srv/grpc-backup/{provider}");
        Assert.NotEmpty(Directory.EnumerateFileSystemEntries(repository));
    }

    private static Dictionary<string, string> Credentials(string provider) => provider switch
    {
        "borg" => new() { ["passphrase"] = Secret + "\n" },
        "restic" => new() { ["restic-password"] = Secret + "\n" },
        _ => [],
    };

    /// <summary>What an operator does once after installing, as the provider's user: create the repository.</summary>
    private static async Task PrepareAsync(string provider, SidecarEnvironment environment)
    {
        string repository = SocketActivatedSidecar.Rerooted(environment.Root, $"/srv/grpc-backup/{provider}");
        string[] asAccount = ["setpriv", "--reuid", $"{environment.Account.Uid}", "--regid", $"{environment.Account.Gid}", "--clear-groups", "--", "env", "-i",
            "PATH=/usr/bin:/bin"];
        (int exit, string stdout, string stderr) = provider switch
        {
            "borg" => await ChildProcess.RunAsync(asAccount[0], [.. asAccount[1..], $"BORG_BASE_DIR={environment.StateDirectory}/borg",
                $"BORG_PASSCOMMAND=cat {environment.CredentialsDirectory}/passphrase", "borg", "init", "-e", "repokey", repository]),
            "restic" => await ResticInitAsync(asAccount, repository, environment),
            _ => (0, "", ""),
        };
        Assert.True(exit == 0, stdout + stderr);
    }

    private static async Task<(int, string, string)> ResticInitAsync(string[] asAccount, string repository, SidecarEnvironment environment)
    {
        // The installed provider ships its generated stubs (build/install); this checkout's are generated here, as root.
        (int exit, _, string stderr) = await ChildProcess.RunAsync(RepoPaths.ResticStubGenerator, []);
        Assert.True(exit == 0, stderr);
        return await ChildProcess.RunAsync(asAccount[0], [.. asAccount[1..], "restic", "init", "--no-cache", "--repository-version", "2",
            "--repo", repository, "--password-file", $"{environment.CredentialsDirectory}/restic-password"]);
    }
}
