using Grpc.Backup.Packaging.Tests.Infrastructure;

namespace Grpc.Backup.Packaging.Tests;

/// <summary>
/// Every unit in build/systemd passes <c>systemd-analyze verify</c>, the provider units are unprivileged and hardened as
/// issue 9 asks, and the sysusers.d and tmpfiles.d files create the users and directories the units name.
/// </summary>
public sealed class SystemdUnitTests
{
    public static readonly string[] Providers = ["directory", "borg", "restic"];

    private static IEnumerable<string> UnitFiles => Directory.GetFiles(SystemdUnit.Directory)
        .Where(f => f.EndsWith(".service", StringComparison.Ordinal) || f.EndsWith(".socket", StringComparison.Ordinal))
        .Order(StringComparer.Ordinal);

    [Fact]
    public async Task Every_unit_passes_systemd_analyze_verify_and_a_typo_would_be_caught()
    {
        using var work = new TempDirectory();
        // verify checks that ExecStart= exists: the installed programs are swapped for this checkout's.
        string[] units = await CopyUnitsAsync(work.File("good"), text => text);
        Assert.Equal(Providers.Length * 2 + 1, units.Length);
        (int exit, string output) = await VerifyAsync(units);
        Assert.True(exit == 0 && output.Length == 0, output);

        string[] typo = await CopyUnitsAsync(work.File("typo"), text => text.Replace("NoNewPrivileges=", "NoNewPrivilegez=", StringComparison.Ordinal));
        (_, string complaint) = await VerifyAsync(typo);
        Assert.Contains("NoNewPrivilegez", complaint, StringComparison.Ordinal);
    }

    /// <summary>Copies the units into a directory with this checkout's programs in place of the installed ones.</summary>
    public static async Task<string[]> CopyUnitsAsync(string directory, Func<string, string> edit, string? programRoot = null)
    {
        Directory.CreateDirectory(directory);
        var copies = new List<string>();
        foreach (string unit in UnitFiles)
        {
            string text = await File.ReadAllTextAsync(unit);
            foreach (var (installed, built) in InstalledLayout.Programs)
            {
                string replacement = programRoot is null ? built : programRoot + InstalledLayout.LibraryDirectory + "/" + installed;
                text = text.Replace(InstalledLayout.LibraryDirectory + "/" + installed, replacement, StringComparison.Ordinal);
            }
            string copy = Path.Combine(directory, Path.GetFileName(unit));
            await File.WriteAllTextAsync(copy, edit(text));
            copies.Add(copy);
        }
        return [.. copies];
    }

    public static async Task<(int ExitCode, string Output)> VerifyAsync(string[] units)
    {
        (int exit, string stdout, string stderr) = await ChildProcess.RunAsync("systemd-analyze", ["verify", .. units]);
        return (exit, (stdout + stderr).Trim());
    }

    [Theory]
    [InlineData("directory")]
    [InlineData("borg")]
    [InlineData("restic")]
    public void A_provider_unit_pair_is_socket_activated_unprivileged_hardened_and_keeps_secrets_out_of_argv(string provider)
    {
        var socket = SystemdUnit.Load($"grpc-backup-provider-{provider}.socket");
        string grpc = socket.Single("Socket", "ListenStream");
        Assert.Equal($"/run/grpc-backup/{provider}.sock", grpc);
        Assert.Equal(grpc + ".fds", socket.Single("Socket", "ListenSequentialPacket"));
        Assert.Equal("0660", socket.Single("Socket", "SocketMode"));
        Assert.Equal("root", socket.Single("Socket", "SocketUser"));
        Assert.Equal("grpc-backup", socket.Single("Socket", "SocketGroup"));

        var service = SystemdUnit.Load($"grpc-backup-provider-{provider}.service");
        Assert.Equal($"grpc-backup-{provider}", service.Single("Service", "User"));
        Assert.Equal("strict", service.Single("Service", "ProtectSystem"));
        Assert.True(service.IsYes("Service", "PrivateTmp"));
        Assert.True(service.IsYes("Service", "NoNewPrivileges"));
        Assert.Equal("", service.Single("Service", "CapabilityBoundingSet"));
        Assert.Equal("", service.Single("Service", "AmbientCapabilities"));
        // The repository the command line names is the one place outside its own directories it may write.
        string[] exec = service.Single("Service", "ExecStart").Split(' ');
        string repository = exec[Array.IndexOf(exec, "--repository") + 1];
        Assert.Equal([repository], service.All("Service", "ReadWritePaths"));
        // Secrets arrive as credentials, by path: never a value on the command line or in the environment.
        var credentials = service.All("Service", "LoadCredential");
        Assert.Equal(provider != "directory", credentials.Count == 1);
        foreach (string credential in credentials)
        {
            string name = credential.Split(':', 2)[0];
            Assert.StartsWith("/etc/grpc-backup/", credential.Split(':', 2)[1], StringComparison.Ordinal);
            Assert.Contains("${CREDENTIALS_DIRECTORY}/" + name, exec);
        }
        Assert.DoesNotContain(service.All("Service", "Environment"), e => e.Contains("PASS", StringComparison.OrdinalIgnoreCase));
    }

    [Fact]
    public void The_host_service_is_a_notify_service_with_a_root_only_socket_in_the_shared_runtime_directory()
    {
        var service = SystemdUnit.Load("grpc-backupd.service");
        Assert.Equal("notify", service.Single("Service", "Type"));
        Assert.Null(service.Optional("Service", "User"));
        Assert.True(service.IsYes("Service", "NoNewPrivileges"));
        string[] exec = service.Single("Service", "ExecStart").Split(' ');
        Assert.Equal("/run/grpc-backup/service.sock", exec[Array.IndexOf(exec, "--socket") + 1]);
        // Its runtime directory is a child of /run/grpc-backup: stopping the service must not remove the providers' sockets.
        Assert.Equal("grpc-backup/work", service.Single("Service", "RuntimeDirectory"));
    }

    [Fact]
    public async Task Sysusers_and_tmpfiles_create_each_units_user_and_its_repository_owned_by_it_alone()
    {
        using var root = new TempDirectory();
        Directory.CreateDirectory(root.File("etc"));
        (int exit, _, string stderr) = await ChildProcess.RunAsync("systemd-sysusers", [$"--root={root.Path}", Path.Combine(SystemdUnit.Directory, "grpc-backup.sysusers")]);
        Assert.True(exit == 0, stderr);
        (exit, _, stderr) = await ChildProcess.RunAsync("systemd-tmpfiles", [$"--root={root.Path}", "--create", Path.Combine(SystemdUnit.Directory, "grpc-backup.tmpfiles")]);
        Assert.True(exit == 0, stderr);

        Dictionary<string, int> uids = File.ReadLines(root.File("etc/passwd")).Select(l => l.Split(':'))
            .ToDictionary(f => f[0], f => int.Parse(f[2], System.Globalization.CultureInfo.InvariantCulture));
        Assert.Contains("grpc-backup:", await File.ReadAllTextAsync(root.File("etc/group")), StringComparison.Ordinal);
        foreach (string provider in Providers)
        {
            var service = SystemdUnit.Load($"grpc-backup-provider-{provider}.service");
            string user = service.Single("Service", "User");
            Assert.True(uids.TryGetValue(user, out int uid), $"sysusers.d does not create {user}");
            Assert.InRange(uid, 1, 999); // a system user
            string repository = root.Path + service.Single("Service", "ReadWritePaths");
            var info = new UnixDirectoryStatus(repository);
            Assert.Equal(uid, info.Uid);
            Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute, File.GetUnixFileMode(repository));
        }
        var socket = SystemdUnit.Load("grpc-backup-provider-directory.socket");
        Assert.Equal((UnixFileMode)Convert.ToInt32(socket.Single("Socket", "DirectoryMode"), 8), File.GetUnixFileMode(root.File("run/grpc-backup")));
    }
}
