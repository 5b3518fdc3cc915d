using Grpc.Backup.Packaging.Tests.Infrastructure;

namespace Grpc.Backup.Packaging.Tests;

/// <summary>
/// build/install into a staged tree (<c>--destdir</c>): the installed programs run, the installed units verify against
/// the installed programs, and a second run replaces the programs but keeps the administrator's configuration.
/// </summary>
public sealed class InstallScriptTests
{
    private static readonly string Script = Path.Combine(RepoPaths.Root, "build", "install");

    [Fact]
    public async Task A_staged_install_runs_verifies_and_a_second_install_keeps_the_configuration()
    {
        using var work = new TempDirectory();
        string stage = work.File("stage");
        await InstallAsync(stage);

        foreach (string program in new[] { "grpc-backupd", "grpc-backup", "grpc-backup-provider-directory", "grpc-backup-provider-borg", "grpc-backup-provider-restic" })
        {
            string link = Path.Combine(stage, "usr/bin", program);
            Assert.NotNull(File.ResolveLinkTarget(link, returnFinalTarget: false)); // a relative symlink into /usr/lib/grpc-backup
            (int exit, string stdout, string stderr) = await ChildProcess.RunAsync(link, ["--help"]);
            Assert.True(exit == 0, $"{program} --help exited {exit}: {stderr}");
            Assert.Contains(program == "grpc-backup" ? "grpc-backup" : "usage:", stdout, StringComparison.Ordinal);
        }

        // The installed units are build/systemd's, and verify against the programs the script installed.
        string unitDirectory = Path.Combine(stage, "usr/lib/systemd/system");
        string[] installed = Directory.GetFiles(unitDirectory);
        Assert.Equal(Directory.GetFiles(SystemdUnit.Directory).Count(f => f.EndsWith(".service", StringComparison.Ordinal) || f.EndsWith(".socket", StringComparison.Ordinal)),
            installed.Length);
        Directory.CreateDirectory(work.File("verify"));
        var staged = new List<string>();
        foreach (string unit in installed)
        {
            string text = await File.ReadAllTextAsync(unit);
            Assert.Equal(await File.ReadAllTextAsync(Path.Combine(SystemdUnit.Directory, Path.GetFileName(unit))), text);
            string copy = Path.Combine(work.File("verify"), Path.GetFileName(unit));
            await File.WriteAllTextAsync(copy, text.Replace(InstalledLayout.LibraryDirectory + "/", stage + InstalledLayout.LibraryDirectory + "/", StringComparison.Ordinal));
            staged.Add(copy);
        }
        (int verifyExit, string verifyOutput) = await SystemdUnitTests.VerifyAsync([.. staged]);
        Assert.True(verifyExit == 0 && verifyOutput.Length == 0, verifyOutput);
        Assert.True(File.Exists(Path.Combine(stage, "usr/lib/sysusers.d/grpc-backup.conf")));
        Assert.True(File.Exists(Path.Combine(stage, "usr/lib/tmpfiles.d/grpc-backup.conf")));
        // The restic provider's stubs were generated at install time: the unprivileged service never writes there.
        Assert.True(File.Exists(Path.Combine(stage, "usr/lib/grpc-backup/providers/restic/gen/.stamp")));
        string config = Path.Combine(stage, "etc/grpc-backup");
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute, File.GetUnixFileMode(config));
        // The configuration directory it creates is one the service accepts.
        (int checkExit, string checkOut, string checkError) = await ChildProcess.RunAsync(Path.Combine(stage, "usr/bin/grpc-backupd"),
            ["--config", config, "--state", work.File("state"), "--check-config"]);
        Assert.True(checkExit == 0, checkOut + checkError);

        // Idempotent: the administrator's files stay, a program file the new version does not have goes.
        string storage = Path.Combine(config, "storages/dir.conf");
        await File.WriteAllTextAsync(storage, "unit: grpc-backup-provider-directory.socket\n");
        string stale = Path.Combine(stage, "usr/lib/grpc-backup/service/stale.dll");
        await File.WriteAllTextAsync(stale, "");
        await InstallAsync(stage);
        Assert.Equal("unit: grpc-backup-provider-directory.socket\n", await File.ReadAllTextAsync(storage));
        Assert.False(File.Exists(stale));
        (int again, _, string againError) = await ChildProcess.RunAsync(Path.Combine(stage, "usr/bin/grpc-backupd"), ["--help"]);
        Assert.True(again == 0, againError);
    }

    /// <summary>
    /// With <c>--jit</c>: the default NativeAOT link of the directory provider takes minutes of both cores, which the CI
    /// budget cannot carry; build/bench publishes that binary and runs the conformance kit's checks against it.
    /// </summary>
    private static async Task InstallAsync(string stage)
    {
        (int exit, string stdout, string stderr) = await ChildProcess.RunAsync(Script, ["--destdir", stage, "--jit"], timeout: TimeSpan.FromMinutes(15));
        Assert.True(exit == 0, $"build/install exited {exit}:\n{stdout}\n{stderr}");
    }
}
