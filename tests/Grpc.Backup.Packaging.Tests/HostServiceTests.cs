using Grpc.Backup.Packaging.Tests.Infrastructure;

namespace Grpc.Backup.Packaging.Tests;

/// <summary>
/// grpc-backupd started with its unit's command line (paths re-rooted) on the configuration directory build/install
/// creates: <c>Type=notify</c> holds, READY=1 comes once the root-only management socket is bound.
/// </summary>
public sealed class HostServiceTests
{
    [Fact]
    public async Task Started_as_its_unit_starts_it_the_service_notifies_ready_once_its_root_only_socket_is_bound()
    {
        var unit = SystemdUnit.Load("grpc-backupd.service");
        Assert.Equal("notify", unit.Single("Service", "Type"));
        using var root = new TempDirectory();
        const UnixFileMode Private = UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute;
        foreach (string directory in new[] { "etc/grpc-backup/guests", "etc/grpc-backup/storages", "etc/grpc-backup/jobs" })
        {
            Directory.CreateDirectory(root.File(directory), Private); // as build/install leaves it
        }
        Directory.CreateDirectory(root.File("run/grpc-backup")); // tmpfiles.d
        string[] exec = UnitCommandLine.ExecStart(unit, root.Path, environment: null).ToArray();
        string socketPath = exec[Array.IndexOf(exec, "--socket") + 1];

        using var notify = new NotifySocket(root.File("notify"));
        // .NET's UseSystemd turns itself on only under a parent process named systemd (PID 1 in production): a shell
        // under that name stands in, and stays the parent (it waits instead of exec'ing the service).
        File.CreateSymbolicLink(root.File("systemd"), "/bin/bash");
        await using var service = ChildProcess.Start(root.File("systemd"), ["-c", "\"$@\" & wait $!", "systemd", .. exec],
            new Dictionary<string, string?> { ["NOTIFY_SOCKET"] = notify.Path });

        await notify.WaitForReadyAsync(TimeSpan.FromSeconds(90), () => service.StandardError);
        Assert.True(File.Exists(socketPath), "READY=1 came before the management socket was bound");
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(socketPath));
    }
}
